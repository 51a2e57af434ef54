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

/// Many rows bound as one parameter: a JSON array that the statement reads
/// back with `json_each(?)`. Every bound parameter costs the platform's
/// binding work of its own (a conversion into JavaScript, then workerd's
/// `bind`), which made the binding, not SQLite, most of what writing a
/// batch of view rows cost; one text per batch costs one. A row of one
/// cell is the cell itself (`IN (SELECT value FROM json_each(?))`), a
/// wider row an array read by position (`j.value ->> 2`); blobs are hex
/// (`unhex(j.value ->> 0)`), as JSON has no bytes. Each batch stays under
/// [`BATCH_BYTES`], well inside the platform's 2 MB per value.
pub mod json_rows {
    /// The most text one batch holds (unless a single row is longer).
    pub const BATCH_BYTES: usize = 1 << 20;

    /// One value of a row.
    #[derive(Debug, Clone, Copy)]
    pub enum Cell<'a> {
        Null,
        Int(i64),
        Real(f64),
        Text(&'a str),
        Blob(&'a [u8]),
    }

    impl<'a> From<&'a super::Value> for Cell<'a> {
        fn from(v: &'a super::Value) -> Self {
            match v {
                super::Value::Null => Cell::Null,
                super::Value::Integer(i) => Cell::Int(*i),
                super::Value::Real(f) => Cell::Real(*f),
                super::Value::Text(s) => Cell::Text(s),
                super::Value::Blob(b) => Cell::Blob(b),
            }
        }
    }

    impl<'a> From<&'a str> for Cell<'a> {
        fn from(s: &'a str) -> Self {
            Cell::Text(s)
        }
    }

    impl<'a> From<&'a String> for Cell<'a> {
        fn from(s: &'a String) -> Self {
            Cell::Text(s)
        }
    }

    impl<'a> From<&'a [u8]> for Cell<'a> {
        fn from(b: &'a [u8]) -> Self {
            Cell::Blob(b)
        }
    }

    impl From<i64> for Cell<'_> {
        fn from(i: i64) -> Self {
            Cell::Int(i)
        }
    }

    impl From<u64> for Cell<'_> {
        fn from(i: u64) -> Self {
            Cell::Int(i as i64)
        }
    }

    impl From<bool> for Cell<'_> {
        fn from(b: bool) -> Self {
            Cell::Int(b as i64)
        }
    }

    impl From<Cell<'_>> for super::Value {
        fn from(c: Cell<'_>) -> Self {
            match c {
                Cell::Null => super::Value::Null,
                Cell::Int(i) => super::Value::Integer(i),
                Cell::Real(f) => super::Value::Real(f),
                Cell::Text(s) => super::Value::Text(s.to_string()),
                Cell::Blob(b) => super::Value::Blob(b.to_vec()),
            }
        }
    }

    /// Batches of rows, each a JSON array of at most [`BATCH_BYTES`].
    #[derive(Debug, Default)]
    pub struct JsonRows {
        done: Vec<(String, usize)>,
        text: Vec<u8>,
        rows: usize,
    }

    impl JsonRows {
        pub fn new() -> Self {
            Self::default()
        }

        /// Adds a row; a batch that would grow past the limit is closed
        /// first, and the row starts the next. False, and left out, for a
        /// row whose text alone would be more than one value may hold:
        /// the caller binds its cells instead.
        pub fn push(&mut self, cells: &[Cell<'_>]) -> bool {
            let start = self.text.len();
            self.text.push(if self.rows == 0 { b'[' } else { b',' });
            let bare = cells.len() == 1;
            if !bare {
                self.text.push(b'[');
            }
            for (n, cell) in cells.iter().enumerate() {
                if n > 0 {
                    self.text.push(b',');
                }
                write_cell(&mut self.text, cell);
            }
            if !bare {
                self.text.push(b']');
            }
            if self.text.len() - start + 2 > super::MAX_VALUE_BYTES {
                self.text.truncate(start);
                return false;
            }
            if self.rows > 0 && self.text.len() + 1 > BATCH_BYTES {
                let row = self.text.split_off(start + 1);
                self.text.truncate(start);
                self.close();
                self.text.push(b'[');
                self.text.extend(row);
            }
            self.rows += 1;
            true
        }

        fn close(&mut self) {
            if self.rows > 0 {
                self.text.push(b']');
                let text = String::from_utf8(std::mem::take(&mut self.text))
                    .expect("JSON of UTF-8 strings");
                self.done.push((text, std::mem::take(&mut self.rows)));
            }
        }

        /// The batches, each with how many rows it holds.
        pub fn finish(mut self) -> Vec<(String, usize)> {
            self.close();
            self.done
        }
    }

    fn write_cell(out: &mut Vec<u8>, cell: &Cell<'_>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match cell {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Cell::Real(f) if f.is_finite() => out.extend_from_slice(format!("{f:?}").as_bytes()),
            Cell::Real(_) => out.extend_from_slice(b"null"),
            Cell::Text(s) => serde_json::to_writer(&mut *out, s).expect("a string encodes"),
            Cell::Blob(b) => {
                out.reserve(b.len() * 2 + 2);
                out.push(b'"');
                for byte in b.iter() {
                    out.push(HEX[(byte >> 4) as usize]);
                    out.push(HEX[(byte & 15) as usize]);
                }
                out.push(b'"');
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rows_are_arrays_and_single_cells_are_bare() {
            let mut rows = JsonRows::new();
            rows.push(&[
                Cell::Text("a\"b"),
                Cell::Int(-3),
                Cell::Blob(&[0, 255]),
                Cell::Null,
            ]);
            rows.push(&["x".into(), 5i64.into(), (&b"\n"[..]).into(), true.into()]);
            assert_eq!(
                rows.finish(),
                vec![(r#"[["a\"b",-3,"00ff",null],["x",5,"0a",1]]"#.to_string(), 2)]
            );
            let mut ids = JsonRows::new();
            ids.push(&["a".into()]);
            ids.push(&["é".into()]);
            assert_eq!(ids.finish(), vec![(r#"["a","é"]"#.to_string(), 2)]);
            assert!(JsonRows::new().finish().is_empty());
        }

        #[test]
        fn batches_stay_under_the_limit_and_keep_every_row() {
            let long = "x".repeat(1000);
            let mut rows = JsonRows::new();
            for n in 0..3000i64 {
                rows.push(&[Cell::Int(n), Cell::Text(&long)]);
            }
            let batches = rows.finish();
            assert!(batches.len() > 1);
            let mut seen = 0;
            for (text, count) in &batches {
                assert!(text.len() <= BATCH_BYTES);
                let parsed: Vec<(i64, String)> = serde_json::from_str(text).unwrap();
                assert_eq!(parsed.len(), *count);
                for (n, s) in parsed {
                    assert_eq!((n, s.len()), (seen, 1000));
                    seen += 1;
                }
            }
            assert_eq!(seen, 3000);
        }

        #[test]
        fn a_row_too_long_for_one_value_is_left_to_the_caller() {
            let huge = vec![7u8; crate::sql::MAX_VALUE_BYTES / 2 + 1];
            let mut rows = JsonRows::new();
            assert!(rows.push(&[Cell::Int(1)]));
            assert!(!rows.push(&[Cell::Blob(&huge), Cell::Int(2)]));
            assert!(rows.push(&[Cell::Int(3)]));
            assert_eq!(rows.finish(), vec![("[1,3]".to_string(), 2)]);
        }
    }
}
