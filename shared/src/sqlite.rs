//! The [`Sql`] interface over `rusqlite`, for native tests.
//!
//! It enforces the Durable Object limits ([`check_limits`]) before SQLite
//! sees a statement, so a native test fails where production would.

use crate::sql::{check_limits, Row, Sql, SqlError, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use std::cell::RefCell;

pub struct SqliteSql {
    conn: RefCell<Connection>,
}

impl SqliteSql {
    /// A fresh in-memory database.
    pub fn memory() -> Self {
        Self::from_connection(Connection::open_in_memory().expect("in-memory sqlite"))
    }

    /// A database in a file (for tests that reopen storage).
    pub fn open(path: &std::path::Path) -> Self {
        Self::from_connection(Connection::open(path).expect("open sqlite file"))
    }

    fn from_connection(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(64);
        SqliteSql {
            conn: RefCell::new(conn),
        }
    }
}

fn err(e: rusqlite::Error) -> SqlError {
    SqlError(e.to_string())
}

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn to_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Sql for SqliteSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        check_limits(params)?;
        let conn = self.conn.borrow();
        let mut stmt = conn.prepare_cached(sql).map_err(err)?;
        let cols = stmt.column_count();
        let bound: Vec<Param> = params.iter().map(Param).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound.iter()))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut r = Vec::with_capacity(cols);
            for i in 0..cols {
                r.push(to_value(row.get_ref(i).map_err(err)?));
            }
            out.push(r);
        }
        Ok(out)
    }

    fn transaction(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        self.conn.borrow().execute_batch("BEGIN").map_err(err)?;
        let commit = body();
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        self.conn.borrow().execute_batch(end).map_err(err)
    }

    fn database_size(&self) -> u64 {
        let page = self.query_i64("PRAGMA page_size", &[]).unwrap_or(0);
        let count = self.query_i64("PRAGMA page_count", &[]).unwrap_or(0);
        (page * count) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::in_transaction;

    #[test]
    fn limits_are_enforced() {
        let db = SqliteSql::memory();
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        let many: Vec<Value> = (0..101).map(Value::Integer).collect();
        let sql = format!("SELECT {}", vec!["?"; 101].join(","));
        assert!(db.query(&sql, &many).unwrap_err().0.contains("too many"));
        let big = Value::Blob(vec![0; 2_000_001]);
        assert!(db
            .exec("INSERT INTO t VALUES (?)", &[big])
            .unwrap_err()
            .0
            .contains("TOOBIG"));
        let huge = Value::Integer(1 << 60);
        assert!(db
            .exec("INSERT INTO t VALUES (?)", &[huge])
            .unwrap_err()
            .0
            .contains("safe range"));
        assert_eq!(
            Value::from(u64::MAX),
            Value::Integer(crate::sql::MAX_SAFE_INTEGER)
        );
    }

    #[test]
    fn transactions_commit_and_roll_back() {
        let db = SqliteSql::memory();
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        let r: Result<(), SqlError> = in_transaction(&db, || {
            db.exec("INSERT INTO t VALUES (1)", &[])?;
            Err(SqlError("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(db.query_i64("SELECT count(*) FROM t", &[]).unwrap(), 0);
        in_transaction(&db, || db.exec("INSERT INTO t VALUES (1)", &[])).unwrap();
        assert_eq!(db.query_i64("SELECT count(*) FROM t", &[]).unwrap(), 1);
    }
}
