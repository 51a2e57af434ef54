//! The [`Sql`] interface over a Durable Object's SQLite.

use js_sys::{Function, Reflect};
use shared::sql::{Row, Sql, SqlError, Value};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, SqlStorageValue, State};

/// The thrown value that makes `transactionSync` roll back on request.
const ROLLBACK: &str = "settee: rollback";

pub struct DoSql {
    sql: SqlStorage,
    /// `ctx.storage`, for `transactionSync`, which `worker` does not wrap.
    storage: JsValue,
}

impl DoSql {
    pub fn new(state: &State) -> Self {
        let storage = state.storage();
        DoSql {
            sql: storage.sql(),
            storage: AsRef::<JsValue>::as_ref(storage.as_raw()).clone(),
        }
    }
}

fn to_js(v: &Value) -> SqlStorageValue {
    match v {
        Value::Null => SqlStorageValue::Null,
        Value::Integer(i) => SqlStorageValue::Integer(*i),
        Value::Real(f) => SqlStorageValue::Float(*f),
        Value::Text(s) => SqlStorageValue::String(s.clone()),
        Value::Blob(b) => SqlStorageValue::Blob(b.clone()),
    }
}

fn from_js(v: SqlStorageValue) -> Value {
    match v {
        SqlStorageValue::Null => Value::Null,
        SqlStorageValue::Boolean(b) => Value::Integer(b as i64),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Real(f),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Blob(b),
    }
}

/// A storage failure with the first line of its message (no JS stacks).
fn err(e: impl std::fmt::Debug) -> SqlError {
    let msg = format!("{e:?}");
    SqlError(msg.lines().next().unwrap_or_default().to_string())
}

impl Sql for DoSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let bindings: Vec<SqlStorageValue> = params.iter().map(to_js).collect();
        let cursor = self.sql.exec(sql, bindings).map_err(err)?;
        cursor
            .raw()
            .map(|row| {
                row.map(|r| r.into_iter().map(from_js).collect())
                    .map_err(err)
            })
            .collect()
    }

    fn transaction(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        let tx: Function = Reflect::get(&self.storage, &JsValue::from_str("transactionSync"))
            .map_err(err)?
            .dyn_into()
            .map_err(err)?;
        // `transactionSync` calls its callback synchronously, before it
        // returns, so the borrowed body outlives every use of the pointer.
        let body: *mut (dyn FnMut() -> bool + '_) = body;
        let body: *mut (dyn FnMut() -> bool + 'static) = unsafe { std::mem::transmute(body) };
        let rolled_back = Rc::new(Cell::new(false));
        let flag = rolled_back.clone();
        let callback = Closure::<dyn FnMut() -> Result<JsValue, JsValue>>::new(move || {
            if unsafe { (*body)() } {
                Ok(JsValue::UNDEFINED)
            } else {
                flag.set(true);
                Err(JsValue::from_str(ROLLBACK))
            }
        });
        let result = tx.call1(&self.storage, callback.as_ref().unchecked_ref());
        drop(callback);
        match result {
            Ok(_) => Ok(()),
            Err(_) if rolled_back.get() => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    fn database_size(&self) -> u64 {
        self.sql.database_size() as u64
    }
}
