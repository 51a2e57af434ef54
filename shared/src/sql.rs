//! The one small SQL interface every storage engine goes through.
//!
//! In production it is a Durable Object's SQLite (`ctx.storage.sql`); in
//! native tests it is `rusqlite` (feature `sqlite`), running the same SQL and
//! enforcing the platform's limits so that tests catch what production would
//! reject.

use crate::error::CouchError;
use std::fmt;

/// At most this many bound parameters per statement (Durable Object SQLite).
pub const MAX_BOUND_PARAMS: usize = 100;
/// At most this many bytes in one string or blob value (Durable Object SQLite).
pub const MAX_VALUE_BYTES: usize = 2_000_000;
/// Integers cross into JavaScript as doubles: beyond this they lose
/// precision, so the interface refuses them.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

pub type Row = Vec<Value>;

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes of a blob (or of text, which SQLite may hand back for either).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Blob(b) => Some(b),
            Value::Text(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s),
            Value::Blob(b) => String::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Blob(b) => Some(b),
            Value::Text(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Value::Text(s) => s.len(),
            Value::Blob(b) => b.len(),
            _ => 8,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
/// Saturates at [`MAX_SAFE_INTEGER`], so "no limit" can be passed as `u64::MAX`.
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Integer(v.min(MAX_SAFE_INTEGER as u64) as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlError(pub String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error: {}", self.0)
    }
}

impl std::error::Error for SqlError {}

impl From<SqlError> for CouchError {
    fn from(e: SqlError) -> Self {
        if e.0.contains("SQLITE_TOOBIG") || e.0.contains("too big") {
            CouchError::new(413, "too_large", "a stored value exceeds the storage limit")
        } else {
            CouchError::internal(e.to_string())
        }
    }
}

/// The SQL interface. Statements run synchronously, as Durable Object
/// SQLite does, so an engine operation never yields mid-transaction.
pub trait Sql {
    /// Runs one statement and returns all its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError>;

    /// Runs `body` in a transaction: committed when it returns `true`, rolled
    /// back when it returns `false`. Transactions do not nest.
    fn transaction(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError>;

    /// Bytes used by the database file.
    fn database_size(&self) -> u64;

    /// Runs a statement for its effect.
    fn exec(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        self.query(sql, params).map(|_| ())
    }

    /// The first row, if any.
    fn query_row(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row as an integer (0 when absent).
    fn query_i64(&self, sql: &str, params: &[Value]) -> Result<i64, SqlError> {
        Ok(self
            .query_row(sql, params)?
            .and_then(|r| r.first().and_then(Value::as_i64))
            .unwrap_or(0))
    }
}

/// Checks a statement's parameters against the platform's limits.
pub fn check_limits(params: &[Value]) -> Result<(), SqlError> {
    if params.len() > MAX_BOUND_PARAMS {
        return Err(SqlError(format!(
            "too many SQL variables: {} > {MAX_BOUND_PARAMS}",
            params.len()
        )));
    }
    if let Some(Value::Integer(i)) = params
        .iter()
        .find(|v| matches!(v, Value::Integer(i) if i.abs() > MAX_SAFE_INTEGER))
    {
        return Err(SqlError(format!(
            "integer {i} is outside JavaScript's safe range"
        )));
    }
    if let Some(v) = params.iter().find(|v| v.len() > MAX_VALUE_BYTES) {
        return Err(SqlError(format!(
            "SQLITE_TOOBIG: string or blob too big ({} bytes)",
            v.len()
        )));
    }
    Ok(())
}

/// Runs `f` in a transaction of `sql`, committing when it returns `Ok`;
/// a storage error inside becomes the error of the whole operation.
pub fn in_transaction<T, E: From<SqlError>>(
    sql: &dyn Sql,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let mut f = Some(f);
    let mut out = None;
    sql.transaction(&mut || {
        let r = (f.take().expect("called once"))();
        let ok = r.is_ok();
        out = Some(r);
        ok
    })?;
    out.expect("transaction body ran")
}

/// Rows packed into one buffer, the form in which they cross from
/// JavaScript (one copy instead of several calls per value). The buffer is
/// the column count (u32, little-endian), then each row's values, each a
/// tag and its payload: 0 null; 1 an integer and 2 a float, both as 8
/// bytes of f64 (JavaScript's numbers); 3 text and 4 a blob, both as a
/// u32 length and the bytes.
pub mod packed {
    use super::{Row, SqlError, Value};

    fn bad() -> SqlError {
        SqlError("malformed rows from the SQL binding".into())
    }

    /// The next `n` bytes of `rest`, which moves past them.
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], SqlError> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }

    fn take_u32(rest: &mut &[u8]) -> Result<usize, SqlError> {
        let s = take(rest, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }

    /// The rows of a packed buffer.
    pub fn decode(bytes: &[u8]) -> Result<Vec<Row>, SqlError> {
        let mut rest = bytes;
        let cols = take_u32(&mut rest)?;
        let mut rows = Vec::new();
        while !rest.is_empty() {
            let mut row = Vec::with_capacity(cols);
            for _ in 0..cols {
                let tag = take(&mut rest, 1)?[0];
                row.push(match tag {
                    0 => Value::Null,
                    1 | 2 => {
                        let s = take(&mut rest, 8)?;
                        let f = f64::from_le_bytes(s.try_into().map_err(|_| bad())?);
                        if tag == 1 {
                            Value::Integer(f as i64)
                        } else {
                            Value::Real(f)
                        }
                    }
                    3 | 4 => {
                        let len = take_u32(&mut rest)?;
                        let data = take(&mut rest, len)?.to_vec();
                        if tag == 3 {
                            Value::Text(String::from_utf8(data).map_err(|_| bad())?)
                        } else {
                            Value::Blob(data)
                        }
                    }
                    _ => return Err(bad()),
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn pack(cols: u32, values: &[Value]) -> Vec<u8> {
            let mut out = cols.to_le_bytes().to_vec();
            for v in values {
                match v {
                    Value::Null => out.push(0),
                    Value::Integer(i) => {
                        out.push(1);
                        out.extend((*i as f64).to_le_bytes());
                    }
                    Value::Real(f) => {
                        out.push(2);
                        out.extend(f.to_le_bytes());
                    }
                    Value::Text(s) => {
                        out.push(3);
                        out.extend((s.len() as u32).to_le_bytes());
                        out.extend(s.as_bytes());
                    }
                    Value::Blob(b) => {
                        out.push(4);
                        out.extend((b.len() as u32).to_le_bytes());
                        out.extend(b);
                    }
                }
            }
            out
        }

        #[test]
        fn every_type_round_trips_in_rows() {
            let values = vec![
                Value::Null,
                Value::Integer(-(1 << 53) + 1),
                Value::Real(0.5),
                Value::Text("ünïcode ☃".into()),
                Value::Blob(vec![0, 255, 7]),
                Value::Text(String::new()),
            ];
            let rows = decode(&pack(3, &values)).unwrap();
            assert_eq!(rows, vec![values[..3].to_vec(), values[3..].to_vec()]);
            assert_eq!(decode(&pack(0, &[])).unwrap(), Vec::<Row>::new());
        }

        #[test]
        fn truncated_or_unknown_input_is_an_error() {
            let whole = pack(2, &[Value::Text("abc".into()), Value::Integer(7)]);
            // Cut anywhere but after the column count (no rows at all).
            for cut in (1..4).chain(5..whole.len()) {
                assert!(decode(&whole[..cut]).is_err(), "cut at {cut}");
            }
            let mut odd = pack(1, &[Value::Null]);
            odd[4] = 9;
            assert!(decode(&odd).is_err());
            assert!(decode(&pack(1, &[Value::Blob(vec![0xff])])[..]).is_ok());
            let mut bad_utf8 = pack(1, &[Value::Text("a".into())]);
            *bad_utf8.last_mut().unwrap() = 0xff;
            assert!(decode(&bad_utf8).is_err());
        }
    }
}
