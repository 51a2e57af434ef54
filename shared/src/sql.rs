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
