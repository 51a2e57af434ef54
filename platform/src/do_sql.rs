//! The [`Sql`] interface over a Durable Object's SQLite.

use js_sys::{Array, Function, Reflect, Uint8Array};
use shared::sql::{packed, Row, Sql, SqlError, Value};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, State};

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

/// A bound parameter as JavaScript (integers beyond 2^53 are refused by
/// the [`Sql`] interface before they get here).
fn to_js(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Integer(i) => JsValue::from(*i as f64),
        Value::Real(f) => JsValue::from(*f),
        Value::Text(s) => JsValue::from_str(s),
        Value::Blob(b) => Uint8Array::from(&b[..]).into(),
    }
}

// A query's rows cross from JavaScript in one buffer, copied once:
// converting each value through wasm-bindgen costs several calls between
// wasm and JavaScript per value (reading every row of `_all_docs` got about
// 14 % faster without them). Short ASCII strings are written byte by byte,
// which is cheaper than a `TextEncoder` call and its typed-array view. Each
// value is a tag byte and its payload: 0 null; 1 an integer, 2 a float
// (8 bytes, little-endian f64); 3 text, 4 a blob (u32 length, then bytes).
// The buffer starts with the column count (u32); `shared::sql::packed`
// reads it.
#[wasm_bindgen(inline_js = r#"
const utf8 = new TextEncoder();
let buf = new Uint8Array(1 << 16);
let view = new DataView(buf.buffer);
function room(at, n, shrink = false) {
  if (at + n <= buf.length && !shrink) return;
  const bigger = new Uint8Array(shrink ? 1 << 16 : Math.max(buf.length * 2, at + n));
  bigger.set(buf.subarray(0, at));
  buf = bigger;
  view = new DataView(buf.buffer);
}
export function settee_rows(sql, query, params) {
  // The last answer was copied out; a big one's buffer is not kept.
  if (buf.length > 1 << 20) room(0, 0, true);
  const cursor = sql.exec(query, ...params);
  const cols = cursor.columnNames.length;
  room(0, 4);
  view.setUint32(0, cols, true);
  let at = 4;
  for (const row of cursor.raw()) {
    for (const v of row) {
      if (v === null || v === undefined) {
        room(at, 1);
        buf[at++] = 0;
      } else if (typeof v === "number" || typeof v === "boolean") {
        const n = Number(v);
        room(at, 9);
        buf[at] = Number.isSafeInteger(n) ? 1 : 2;
        view.setFloat64(at + 1, n, true);
        at += 9;
      } else if (typeof v === "string") {
        room(at, 5 + v.length * 3);
        buf[at] = 3;
        let written = 0;
        if (v.length <= 64) {
          while (written < v.length) {
            const c = v.charCodeAt(written);
            if (c > 0x7f) break;
            buf[at + 5 + written++] = c;
          }
        }
        if (written < v.length) {
          written = utf8.encodeInto(v, buf.subarray(at + 5)).written;
        }
        view.setUint32(at + 1, written, true);
        at += 5 + written;
      } else {
        const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        room(at, 5 + bytes.length);
        buf[at] = 4;
        view.setUint32(at + 1, bytes.length, true);
        buf.set(bytes, at + 5);
        at += 5 + bytes.length;
      }
    }
  }
  return buf.subarray(0, at);
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn settee_rows(sql: &JsValue, query: &str, params: &Array) -> Result<Uint8Array, JsValue>;
}

/// A storage failure with the first line of its message (no JS stacks).
fn err(e: impl std::fmt::Debug) -> SqlError {
    let msg = format!("{e:?}");
    SqlError(msg.lines().next().unwrap_or_default().to_string())
}

impl Sql for DoSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let bindings: Array = params.iter().map(to_js).collect();
        let rows = settee_rows(self.sql.as_ref(), sql, &bindings).map_err(err)?;
        packed::decode(&rows.to_vec())
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
