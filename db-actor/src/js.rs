//! The JavaScript sandbox for design-document functions (map, reduce,
//! `validate_doc_update`), on QuickJS (rquickjs), as CouchDB 3.4 runs them.
//!
//! Workers forbid `eval` in V8, so the engine is QuickJS compiled to wasm.
//! Hostile functions are contained by three budgets, each of which ends
//! only the call that exceeds it:
//! - **steps**: QuickJS calls the interrupt handler every few thousand
//!   bytecode operations; we count those calls (wall clocks do not advance
//!   during synchronous code on Workers), so an endless loop is stopped.
//! - **memory**: a counting allocator refuses allocations beyond the
//!   budget (`JS_SetMemoryLimit` has no effect on wasm32), so a memory bomb
//!   gets `out of memory`.
//! - **stack**: 64 KiB of QuickJS stack; deeper recursion throws
//!   `stack overflow` before V8's own native stack is at risk.
//!
//! After a call that hit a budget, [`Engine::healthy`] is false and the
//! caller builds a fresh engine: QuickJS state after an interrupt or an
//! allocation failure is not worth trusting.

use rquickjs::allocator::{Allocator, RustAllocator};
use rquickjs::{Context, Function, Runtime};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// CoffeeScript's browser compiler (npm `coffeescript`, found by build.rs);
/// it defines the global `CoffeeScript`.
const COFFEESCRIPT: &str = include_str!(env!("SETTEE_COFFEESCRIPT"));

/// Interrupt-handler calls allowed per function call (QuickJS-ng calls it
/// every 10,000 branch operations or so): ~20M operations, well under a
/// second.
pub const STEP_BUDGET: u64 = 2_000;
/// Memory one engine may hold, all functions and their data together.
pub const MEMORY_BUDGET: usize = 32 * 1024 * 1024;
/// QuickJS's stack limit (see the module docs). Native builds measure
/// the machine stack, whose (debug) frames are far larger than wasm's.
#[cfg(target_arch = "wasm32")]
pub const STACK_BYTES: usize = 64 * 1024;
#[cfg(not(target_arch = "wasm32"))]
pub const STACK_BYTES: usize = 1024 * 1024;

/// How a call into JavaScript failed.
#[derive(Debug, Clone, PartialEq)]
pub enum JsError {
    /// The function threw: the thrown value as JSON (`{"forbidden": ...}`
    /// for validation, an `Error`'s `{"name","message"}` otherwise).
    Thrown(Value),
    /// The step budget ran out (an endless or too long loop).
    Timeout,
    /// The memory budget ran out.
    OutOfMemory,
    /// The source is not a function, or does not compile.
    Compile(String),
}

impl std::fmt::Display for JsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsError::Thrown(v) => match v.get("message").and_then(Value::as_str) {
                Some(m) => write!(
                    f,
                    "{}: {m}",
                    v.get("name").and_then(Value::as_str).unwrap_or("Error")
                ),
                None => write!(f, "{v}"),
            },
            JsError::Timeout => write!(f, "the function ran too long and was stopped"),
            JsError::OutOfMemory => write!(f, "the function used too much memory and was stopped"),
            JsError::Compile(m) => write!(f, "{m}"),
        }
    }
}

/// CouchDB's query-server environment, plus the entry points the engine
/// calls. Every entry point takes and returns JSON text and reports a
/// throw as `{"thrown": ...}`, so one string crosses the boundary.
const PRELUDE: &str = r#"
var __fns = [];
var __emitted = null;
function emit(key, value) {
  if (__emitted === null) throw new Error("emit is only available in map functions");
  __emitted.push([key === undefined ? null : key, value === undefined ? null : value]);
}
function sum(values) { var s = 0; for (var i = 0; i < values.length; i++) s += values[i]; return s; }
function isArray(v) { return Array.isArray(v); }
function toJSON(v) { return JSON.stringify(v); }
function log(m) { __host_log(typeof m === "string" ? m : JSON.stringify(m)); }
function __thrown(e) {
  if (e instanceof Error) return JSON.stringify({thrown: {name: e.name, message: String(e.message)}});
  try { return JSON.stringify({thrown: e === undefined ? null : e}); }
  catch (_) { return JSON.stringify({thrown: {name: "Error", message: String(e)}}); }
}
// CommonJS modules stored in the design document, as CouchDB's `require`.
function __requirer(ddoc, dir, cache) {
  return function (path) {
    var parts = path.split("/"), at = path.charAt(0) === "." ? dir.slice() : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i] === "..") { if (!at.length) throw new Error("invalid require path: " + path); at.pop(); }
      else if (parts[i] !== "." && parts[i] !== "") at.push(parts[i]);
    }
    var key = at.join("/");
    if (Object.prototype.hasOwnProperty.call(cache, key)) return cache[key].exports;
    var src = ddoc;
    for (var j = 0; j < at.length; j++) src = src == null ? undefined : src[at[j]];
    if (typeof src !== "string") throw new Error("require: module not found: " + path);
    var module = {id: key, exports: {}};
    cache[key] = module;
    var body = (0, eval)("(function (module, exports, require) {" + src + "\n})");
    body(module, module.exports, __requirer(ddoc, at.slice(0, -1), cache));
    return module.exports;
  };
}
function __compile(src, ddocJson) {
  try {
    var require = __requirer(JSON.parse(ddocJson), [], {});
    // couchjs takes `function (doc) {...};` too: drop trailing semicolons.
    src = String(src).replace(/[\s;]+$/, "");
    var f = (0, eval)("(function (require) { return (" + src + "\n); })")(require);
    if (typeof f !== "function") return JSON.stringify({error: "expression does not eval to a function: " + src.slice(0, 100)});
    __fns.push(f);
    return JSON.stringify({ok: __fns.length - 1});
  } catch (e) {
    return JSON.stringify({error: String(e)});
  }
}
// `"language": "coffeescript"` design documents: CoffeeScript's own
// compiler (loaded on first use) turns a function into JavaScript.
function __coffee(src) {
  try { return JSON.stringify({ok: CoffeeScript.compile(String(src), {bare: true})}); }
  catch (e) { return JSON.stringify({error: "CoffeeScript: " + String(e)}); }
}
function __map(i, docJson) {
  __emitted = [];
  try { __fns[i](JSON.parse(docJson)); return JSON.stringify({ok: __emitted}); }
  catch (e) { return __thrown(e); }
  finally { __emitted = null; }
}
// Search index functions' `index(name, value, options)`, with the checks
// CouchDB's dreyfus.js makes.
var __indexed = null;
function index(name, value, options) {
  if (__indexed === null) throw new Error("index is only available in search index functions");
  if (__nouveau) return __nouveau_index(arguments);
  if (typeof name !== "string") throw {name: "TypeError", message: "name must be a string not " + typeof name};
  if (name.substring(0, 1) === "_") throw {name: "ReservedName", message: "name must not start with an underscore"};
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
    throw {name: "TypeError", message: "value must be a string, a number or boolean not " + typeof value};
  if (options && typeof options !== "object") throw {name: "TypeError", message: "options must be an object not " + typeof options};
  __indexed.push([name, value, options || {}]);
}
// Nouveau's `index(type, name, value, options)`, as CouchDB's nouveau.js
// checks it; the type goes with the options as `@type`.
var __nouveau = false;
function __nouveau_index(args) {
  var type = args[0], name = args[1], value = args[2], options = args[3] || {};
  if (typeof name !== "string") throw {name: "TypeError", message: "name must be a string not " + typeof name};
  if (name.substring(0, 1) === "_") throw {name: "ReservedName", message: "name must not start with an underscore"};
  var want = {double: "number", string: "string", text: "string"}[type];
  if (type === "stored") { if (typeof value !== "string" && typeof value !== "number") throw {name: "TypeError", message: "value for stored field must be a string or number not " + typeof value}; }
  else if (want === undefined) throw {name: "TypeError", message: "type must be one of double, string, text or stored, not " + type};
  else if (typeof value !== want) throw {name: "TypeError", message: "value for " + type + " field must be a " + want + " not " + typeof value};
  if (typeof options !== "object") throw {name: "TypeError", message: "options must be an object not " + typeof options};
  var o = {"@type": type};
  for (var k in options) o[k] = options[k];
  __indexed.push([name, value, o]);
}
// Many documents in one call (an array's JSON): per document, the rows it
// emitted (or, `indexing`, the fields it indexed) or what it threw. Each
// document starts with a fresh step budget. The answers are encoded in one
// `JSON.stringify` (a call per document cost more than the encoding); if
// that throws (a cyclic or BigInt value emitted), each is encoded alone,
// and the one that cannot be becomes its document's error.
function __many(i, docsJson, indexing, nouveau) {
  var docs = JSON.parse(docsJson), out = new Array(docs.length);
  __nouveau = !!nouveau;
  for (var d = 0; d < docs.length; d++) {
    __host_fresh_budget();
    var got = [];
    if (indexing) __indexed = got; else __emitted = got;
    try { __fns[i](docs[d]); out[d] = {ok: got}; }
    catch (e) { out[d] = JSON.parse(__thrown(e)); }
    finally { __emitted = null; __indexed = null; docs[d] = null; }
  }
  __host_fresh_budget();
  try { return JSON.stringify({ok: out}); }
  catch (_) {
    for (var d = 0; d < out.length; d++) {
      try { out[d] = JSON.stringify(out[d]); } catch (e) { out[d] = __thrown(e); }
    }
    return "{\"ok\":[" + out.join(",") + "]}";
  }
}
function __map_many(i, docsJson) { return __many(i, docsJson, false); }
function __index_many(i, docsJson) { return __many(i, docsJson, true, false); }
function __nouveau_many(i, docsJson) { return __many(i, docsJson, true, true); }
// Show and list functions: `provides`/`registerType` choose a response
// type from the request's `format` or Accept header; lists read rows with
// `getRow` and write with `start` and `send`.
var __providers = null, __chunks = null, __start = null, __rows = null, __rowAt = 0;
var __mimes = {
  all: ["*/*"], text: ["text/plain; charset=utf-8"], html: ["text/html; charset=utf-8"],
  xhtml: ["application/xhtml+xml"], xml: ["application/xml", "text/xml", "application/x-xml"],
  js: ["text/javascript", "application/javascript", "application/x-javascript"],
  css: ["text/css"], ics: ["text/calendar"], csv: ["text/csv"],
  rss: ["application/rss+xml"], atom: ["application/atom+xml"],
  yaml: ["application/x-yaml", "text/yaml"], multipart_form: ["multipart/form-data"],
  url_encoded_form: ["application/x-www-form-urlencoded"], json: ["application/json", "text/x-json"]
};
function __only(what, v) { if (v === null) throw new Error(what + " is only available in show and list functions"); }
function registerType(key) { __mimes[key] = Array.prototype.slice.call(arguments, 1); }
function provides(key, fun) { __only("provides", __providers); __providers.push([key, fun]); }
function start(resp) { __only("start", __chunks); __start = resp || {}; }
function send(chunk) { __only("send", __chunks); __chunks.push(String(chunk)); }
function getRow() { __only("getRow", __chunks); return __rows !== null && __rowAt < __rows.length ? __rows[__rowAt++] : null; }
// The quality an Accept header gives a media type (0: not acceptable).
function __quality(mime, accept) {
  var m = mime.split(";")[0].trim().split("/"), best = -1, q = 0;
  String(accept || "*/*").split(",").forEach(function (range) {
    var bits = range.split(";"), t = bits[0].trim().split("/"), rq = 1;
    for (var i = 1; i < bits.length; i++) {
      var kv = bits[i].split("=");
      if (kv[0].trim() === "q") rq = parseFloat(kv[1]);
    }
    var score = (t[0] === m[0] ? 2 : t[0] === "*" ? 0 : -9) + (t[1] === m[1] ? 1 : t[1] === "*" ? 0 : -9);
    if (score >= 0 && score > best) { best = score; q = isNaN(rq) ? 1 : rq; }
  });
  return q;
}
// The provider to run and the type to answer with: for an Accept header,
// the registered type that matched best, as couchjs's Mimeparse.bestMatch.
function __pick(accept, format) {
  var chosen = null, chosenQ = 0;
  __providers.forEach(function (p) {
    if (format) { if (chosen === null && p[0] === format) chosen = [p, (__mimes[p[0]] || [])[0] || null]; return; }
    (__mimes[p[0]] || []).forEach(function (mime) {
      var q = __quality(mime, accept);
      if (q > chosenQ) { chosen = [p, mime]; chosenQ = q; }
    });
  });
  return chosen;
}
function __render(i, argsJson) {
  var a = JSON.parse(argsJson);
  __providers = []; __chunks = []; __start = null; __rows = a[1]; __rowAt = 0;
  try {
    var r = __fns[i].apply(null, a[0]), mime = null;
    if (__providers.length) {
      var p = __pick(a[2], a[3]);
      if (p === null) return JSON.stringify({ok: {not_acceptable: __providers.map(function (p) { return p[0]; })}});
      mime = p[1];
      r = p[0][1]();
    }
    return JSON.stringify({ok: {result: r === undefined ? null : r, chunks: __chunks, start: __start, mime: mime}});
  } catch (e) { return __thrown(e); }
  finally { __providers = null; __chunks = null; __rows = null; __start = null; }
}
function __call(i, argsJson) {
  try {
    var r = __fns[i].apply(null, JSON.parse(argsJson));
    return JSON.stringify({ok: r === undefined ? null : r});
  } catch (e) { return __thrown(e); }
}
"#;

/// Counts the bytes QuickJS holds and refuses to go beyond a budget.
struct CountingAllocator {
    used: Rc<Cell<usize>>,
    limit: usize,
    refused: Rc<Cell<bool>>,
}

impl CountingAllocator {
    fn admit(&self, more: usize) -> bool {
        let ok = self.used.get().saturating_add(more) <= self.limit;
        if !ok {
            self.refused.set(true);
        }
        ok
    }
}

// SAFETY: every pointer comes from `RustAllocator`, which meets the
// trait's contract; this only counts and refuses.
unsafe impl Allocator for CountingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let p = RustAllocator.alloc(size);
        if !p.is_null() {
            // SAFETY: `p` was just allocated by `RustAllocator`.
            self.used
                .set(self.used.get() + unsafe { RustAllocator::usable_size(p) });
        }
        p
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        match count.checked_mul(size) {
            Some(total) if self.admit(total) => {
                let p = RustAllocator.calloc(count, size);
                if !p.is_null() {
                    // SAFETY: as in `alloc`.
                    self.used
                        .set(self.used.get() + unsafe { RustAllocator::usable_size(p) });
                }
                p
            }
            _ => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        self.used.set(
            self.used
                .get()
                .saturating_sub(RustAllocator::usable_size(ptr)),
        );
        RustAllocator.dealloc(ptr);
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = RustAllocator::usable_size(ptr);
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let p = RustAllocator.realloc(ptr, new_size);
        if !p.is_null() {
            self.used
                .set(self.used.get() - old + RustAllocator::usable_size(p));
        }
        p
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        RustAllocator::usable_size(ptr)
    }
}

/// One QuickJS runtime with CouchDB's environment and compiled functions.
pub struct Engine {
    // The context must go before the runtime it belongs to.
    ctx: Context,
    _rt: Runtime,
    steps: Rc<Cell<u64>>,
    refused: Rc<Cell<bool>>,
    broken: Cell<bool>,
    coffee_loaded: Cell<bool>,
}

/// A compiled function's handle in its [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FnId(u32);

impl Engine {
    pub fn new() -> Result<Engine, JsError> {
        let refused = Rc::new(Cell::new(false));
        let rt = Runtime::new_with_alloc(CountingAllocator {
            used: Rc::new(Cell::new(0)),
            limit: MEMORY_BUDGET,
            refused: refused.clone(),
        })
        .map_err(|e| JsError::Compile(format!("cannot start the JavaScript engine: {e}")))?;
        rt.set_max_stack_size(STACK_BYTES);
        let steps = Rc::new(Cell::new(0u64));
        let counter = steps.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            counter.set(counter.get() + 1);
            counter.get() > STEP_BUDGET
        })));
        let ctx = Context::full(&rt)
            .map_err(|e| JsError::Compile(format!("cannot start the JavaScript engine: {e}")))?;
        ctx.with(|ctx| {
            // `log()` goes to the Worker's log (CouchDB's couch.log).
            let host_log = Function::new(ctx.clone(), |message: String| {
                tracing::info!(target: "settee::js", "{message}");
            })?;
            ctx.globals().set("__host_log", host_log)?;
            // `__map_many` gives each document the budget a call has.
            let fresh = steps.clone();
            let fresh_budget = Function::new(ctx.clone(), move || fresh.set(0))?;
            ctx.globals().set("__host_fresh_budget", fresh_budget)?;
            ctx.eval::<(), _>(PRELUDE)
        })
        .map_err(|e| JsError::Compile(format!("prelude: {e}")))?;
        Ok(Engine {
            ctx,
            _rt: rt,
            steps,
            refused,
            broken: Cell::new(false),
            coffee_loaded: Cell::new(false),
        })
    }

    /// False once a call hit a budget: build a new engine.
    pub fn healthy(&self) -> bool {
        !self.broken.get()
    }

    /// Calls a prelude entry point with string arguments; its JSON answer.
    fn invoke(&self, entry: &str, a: u32, b: &str) -> Result<Value, JsError> {
        if self.broken.get() {
            return Err(JsError::Compile("the engine was stopped".into()));
        }
        self.steps.set(0);
        self.refused.set(false);
        let out: Result<String, String> = self.ctx.with(|ctx| {
            let f: Function = ctx.globals().get(entry).map_err(|e| e.to_string())?;
            f.call::<_, String>((a, b)).map_err(|e| {
                let caught = ctx.catch();
                format!("{e}: {caught:?}")
            })
        });
        let failed = self.steps.get() > STEP_BUDGET || self.refused.get();
        if failed {
            self.broken.set(true);
            return Err(if self.steps.get() > STEP_BUDGET {
                JsError::Timeout
            } else {
                JsError::OutOfMemory
            });
        }
        let text = out.map_err(|m| {
            self.broken.set(true);
            JsError::Thrown(serde_json::json!({"name": "InternalError", "message": m}))
        })?;
        let mut v: Value = serde_json::from_str(&text)
            .map_err(|e| JsError::Compile(format!("unreadable answer: {e}")))?;
        if let Some(t) = v.get_mut("thrown") {
            return Err(JsError::Thrown(t.take()));
        }
        Ok(v.get_mut("ok").map(Value::take).unwrap_or(Value::Null))
    }

    /// Compiles a function's source; `ddoc` is its design document, where
    /// `require` finds CommonJS modules and whose `language` may say the
    /// source is CoffeeScript.
    pub fn compile(&self, source: &str, ddoc: &Value) -> Result<FnId, JsError> {
        let translated;
        let source = if ddoc.get("language").and_then(Value::as_str) == Some("coffeescript") {
            translated = self.coffee(source)?;
            translated.as_str()
        } else {
            source
        };
        self.steps.set(0);
        let text = self.ctx.with(|ctx| {
            let f: Function = ctx.globals().get("__compile").map_err(|e| e.to_string())?;
            f.call::<_, String>((source, ddoc.to_string()))
                .map_err(|e| e.to_string())
        });
        let n = compiled(text)?
            .as_u64()
            .ok_or_else(|| JsError::Compile("no handle".into()))?;
        Ok(FnId(n as u32))
    }

    /// CoffeeScript source as JavaScript. Translations are kept per isolate,
    /// so the compiler (half a megabyte of JavaScript) is loaded into an
    /// engine only for a function not seen before.
    fn coffee(&self, source: &str) -> Result<String, JsError> {
        thread_local! {
            static TRANSLATED: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
        }
        if let Some(js) = TRANSLATED.with(|t| t.borrow().get(source).cloned()) {
            return Ok(js);
        }
        self.steps.set(0);
        let text = self.ctx.with(|ctx| {
            if !self.coffee_loaded.get() {
                ctx.eval::<(), _>(COFFEESCRIPT)
                    .map_err(|e| format!("cannot load the CoffeeScript compiler: {e}"))?;
                self.coffee_loaded.set(true);
            }
            let f: Function = ctx.globals().get("__coffee").map_err(|e| e.to_string())?;
            f.call::<_, String>((source,)).map_err(|e| e.to_string())
        });
        let js = compiled(text)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| JsError::Compile("CoffeeScript compilation failed".into()))?;
        TRANSLATED.with(|t| {
            let mut t = t.borrow_mut();
            if t.len() >= 256 {
                t.clear();
            }
            t.insert(source.to_string(), js.clone());
        });
        Ok(js)
    }

    /// Runs a map function over one document: the `(key, value)` pairs it
    /// emitted.
    pub fn map(&self, f: FnId, doc_json: &str) -> Result<Vec<(Value, Value)>, JsError> {
        Ok(emitted_rows(Some(self.invoke("__map", f.0, doc_json)?)))
    }

    /// Runs a map function over many documents (`docs_json`, a JSON array
    /// of them) in one call: per document, its `(key, value)` pairs or
    /// what it threw. Running out of a budget still fails the whole call.
    pub fn map_many(&self, f: FnId, docs_json: &str) -> Result<Vec<MapResult>, JsError> {
        self.many("__map_many", f, docs_json, |ok| emitted_rows(Some(ok)))
    }

    /// Runs a search index function over many documents as
    /// [`Self::map_many`] runs a map function: per document, the
    /// `(field, value, options)` it indexed, or what it threw.
    /// `nouveau`: the function calls Nouveau's `index(type, name, value,
    /// options)`, whose type comes back in the options as `@type`.
    pub fn index_many(
        &self,
        f: FnId,
        docs_json: &str,
        nouveau: bool,
    ) -> Result<Vec<IndexResult>, JsError> {
        let entry = if nouveau {
            "__nouveau_many"
        } else {
            "__index_many"
        };
        self.many(entry, f, docs_json, |ok| match ok {
            Value::Array(entries) => entries
                .into_iter()
                .filter_map(|e| match e {
                    Value::Array(mut t) if t.len() == 3 => {
                        let options = t.pop().expect("three");
                        let value = t.pop().expect("three");
                        let field = t.pop().and_then(|n| n.as_str().map(str::to_string))?;
                        Some((field, value, options))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// One of the `__many` entry points, each document's answer read by
    /// `read`.
    fn many<T>(
        &self,
        entry: &str,
        f: FnId,
        docs_json: &str,
        read: impl Fn(Value) -> T,
    ) -> Result<Vec<Result<T, Value>>, JsError> {
        let Value::Array(results) = self.invoke(entry, f.0, docs_json)? else {
            return Err(JsError::Compile("unreadable answer".into()));
        };
        Ok(results
            .into_iter()
            .map(|mut r| match r.get_mut("thrown") {
                Some(t) => Err(t.take()),
                None => Ok(read(r.get_mut("ok").map_or(Value::Null, Value::take))),
            })
            .collect())
    }

    /// Calls a function with JSON arguments; its JSON result.
    pub fn call(&self, f: FnId, args: &[&Value]) -> Result<Value, JsError> {
        self.invoke("__call", f.0, &serde_json::to_string(args).expect("json"))
    }

    /// Calls a show or list function: `{result, chunks, start, mime}`, or
    /// `{not_acceptable: [types]}` when none it `provides` suits the
    /// request. `rows` are what a list's `getRow` returns; `accept` and
    /// `format` choose among `provides`.
    pub fn render(
        &self,
        f: FnId,
        args: &[&Value],
        rows: Option<&Value>,
        accept: Option<&str>,
        format: Option<&str>,
    ) -> Result<Value, JsError> {
        let input = json!([args, rows, accept, format]);
        self.invoke("__render", f.0, &input.to_string())
    }
}

/// What a map function did with one document: its rows, or the value it
/// threw.
pub type MapResult = Result<Vec<(Value, Value)>, Value>;

/// What a search index function indexed for one document, or what it
/// threw: `(field, value, options)` per `index()` call.
pub type IndexResult = Result<Vec<(String, Value, Value)>, Value>;

/// The `[key, value]` pairs a map call emitted.
fn emitted_rows(rows: Option<Value>) -> Vec<(Value, Value)> {
    match rows {
        Some(Value::Array(rows)) => rows
            .into_iter()
            .filter_map(|r| match r {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let v = kv.pop()?;
                    Some((kv.pop()?, v))
                }
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// The `ok` of a compile step's `{"ok": ...}` / `{"error": ...}` answer.
fn compiled(text: Result<String, String>) -> Result<Value, JsError> {
    let mut v: Value = serde_json::from_str(&text.map_err(JsError::Compile)?)
        .map_err(|e| JsError::Compile(e.to_string()))?;
    match v.get_mut("ok") {
        Some(ok) => Ok(ok.take()),
        None => Err(JsError::Compile(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("compilation failed")
                .to_string(),
        )),
    }
}

/// The host clock QuickJS's `Date` reads on wasm32; defined here so the
/// module has no stray `env` import.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn __rquickjs_host_now_us() -> f64 {
    js_sys::Date::now() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compiled(src: &str) -> (Engine, FnId) {
        let e = Engine::new().unwrap();
        let f = e.compile(src, &json!({})).unwrap();
        (e, f)
    }

    #[test]
    fn map_emits_rows_with_undefined_as_null() {
        let (e, f) =
            compiled("function (doc) { if (doc.email) emit(doc.email, null); emit([doc.a, 1]); }");
        let rows = e.map(f, r#"{"email":"x@y","a":2}"#).unwrap();
        assert_eq!(
            rows,
            vec![(json!("x@y"), json!(null)), (json!([2, 1]), json!(null))]
        );
        assert_eq!(e.map(f, r#"{"a":"b"}"#).unwrap().len(), 1);
    }

    #[test]
    fn a_throwing_map_reports_the_error_and_the_engine_goes_on() {
        let (e, f) = compiled("function (doc) { emit(doc.x.y, 1); }");
        assert!(matches!(e.map(f, "{}"), Err(JsError::Thrown(_))));
        assert!(e.healthy());
        assert_eq!(e.map(f, r#"{"x":{"y":3}}"#).unwrap().len(), 1);
    }

    #[test]
    fn index_functions_index_fields_with_dreyfus_checks() {
        let (e, f) = compiled(
            "function (doc) { index('default', doc.title); \
             if (doc.n !== undefined) index('n', doc.n, {store: true, facet: true}); \
             if (doc.bad) index(doc.bad[0], doc.bad[1], doc.bad[2]); }",
        );
        let docs = r#"[{"title": "A b", "n": 3}, {"title": "x", "bad": ["_x", "v"]},
            {"title": "y", "bad": ["f", {"o": 1}]}, {"title": "z", "bad": [7, "v"]},
            {"title": "w", "bad": ["f", "v", "opts"]}, {"title": true}]"#;
        let out = e.index_many(f, docs, false).unwrap();
        assert_eq!(
            out[0],
            Ok(vec![
                ("default".into(), json!("A b"), json!({})),
                ("n".into(), json!(3), json!({"store": true, "facet": true})),
            ])
        );
        for (at, name) in [
            (1, "ReservedName"),
            (2, "TypeError"),
            (3, "TypeError"),
            (4, "TypeError"),
        ] {
            assert_eq!(out[at].as_ref().unwrap_err()["name"], json!(name), "{at}");
        }
        assert_eq!(out[5], Ok(vec![("default".into(), json!(true), json!({}))]));
        // `index` belongs to index functions, `emit` to map functions.
        let (e, f) = compiled("function (doc) { index('a', 'b'); }");
        assert!(matches!(e.map(f, "{}"), Err(JsError::Thrown(_))));
        let (e, f) = compiled("function (doc) { emit(1, 2); }");
        assert!(e.index_many(f, "[{}]", false).unwrap()[0].is_err());
    }

    #[test]
    fn nouveau_index_functions_name_a_type_first() {
        let (e, f) = compiled(
            "function (doc) { index('text', 'title', doc.title, {store: true}); \
             index('double', 'n', doc.n); \
             if (doc.bad) index(doc.bad[0], doc.bad[1], doc.bad[2]); }",
        );
        let docs = r#"[{"title": "A b", "n": 3}, {"title": "x", "n": "3"},
            {"title": "y", "n": 1, "bad": ["geo", "g", 1]}, {"title": "z", "n": 1, "bad": ["stored", "s", 2]}]"#;
        let out = e.index_many(f, docs, true).unwrap();
        assert_eq!(
            out[0],
            Ok(vec![
                (
                    "title".into(),
                    json!("A b"),
                    json!({"@type": "text", "store": true})
                ),
                ("n".into(), json!(3), json!({"@type": "double"})),
            ])
        );
        assert_eq!(out[1].as_ref().unwrap_err()["name"], json!("TypeError"));
        assert_eq!(out[2].as_ref().unwrap_err()["name"], json!("TypeError"));
        assert_eq!(
            out[3].as_ref().unwrap()[2],
            ("s".into(), json!(2), json!({"@type": "stored"}))
        );
        // The same engine goes back to dreyfus's `index` afterwards.
        let (e2, g) = compiled("function (doc) { index('default', doc.t); }");
        assert!(e2.index_many(g, r#"[{"t": "a"}]"#, false).unwrap()[0].is_ok());
    }

    #[test]
    fn many_documents_map_in_one_call_each_on_its_own() {
        let (e, f) = compiled("function (doc) { emit(doc.x.y, doc._id); }");
        let out = e
            .map_many(
                f,
                r#"[{"_id":"a","x":{"y":1}},{"_id":"b"},{"_id":"c","x":{"y":[2]}}]"#,
            )
            .unwrap();
        assert_eq!(out[0], Ok(vec![(json!(1), json!("a"))]));
        assert!(out[1].as_ref().unwrap_err()["message"]
            .as_str()
            .unwrap()
            .contains("undefined"));
        assert_eq!(out[2], Ok(vec![(json!([2]), json!("c"))]));
        // A value JSON cannot encode fails its own document, not the batch.
        let (e, f) = compiled(
            "function (doc) { var v = doc.n; if (doc.cyclic) { v = {}; v.self = v; } emit(doc.n, v); }",
        );
        let out = e
            .map_many(f, r#"[{"n":1},{"n":2,"cyclic":true},{"n":3}]"#)
            .unwrap();
        assert_eq!(out[0], Ok(vec![(json!(1), json!(1))]));
        assert_eq!(out[1].as_ref().unwrap_err()["name"], json!("TypeError"));
        assert_eq!(out[2], Ok(vec![(json!(3), json!(3))]));
        // Each document gets a whole step budget: together these run far
        // past one call's, alone each is within it.
        let (e, f) = compiled(
            "function (doc) { var s = 0; for (var i = 0; i < 2000000; i++) s += i; emit(s, null); }",
        );
        let docs = format!("[{}]", ["{}"; 12].join(","));
        assert_eq!(e.map_many(f, &docs).unwrap().len(), 12);
        let (e, f) = compiled(
            "function (doc) { var s = 0; for (var i = 0; i < 24000000; i++) s += i; emit(s, null); }",
        );
        assert_eq!(
            e.map(f, "{}"),
            Err(JsError::Timeout),
            "the same work in one call"
        );
        let (e, f) = compiled("function (doc) { if (doc.loop) while (true) {} emit(1, 1); }");
        assert_eq!(
            e.map_many(f, r#"[{}, {"loop": true}]"#),
            Err(JsError::Timeout)
        );
        assert!(!e.healthy());
    }

    #[test]
    fn thrown_objects_come_back_as_json() {
        let (e, f) = compiled("function (n, o, u, s) { throw({forbidden: 'no ' + n.a}); }");
        let err = e.call(f, &[&json!({"a": 1}), &json!(null), &json!({}), &json!({})]);
        assert_eq!(err, Err(JsError::Thrown(json!({"forbidden": "no 1"}))));
    }

    #[test]
    fn helpers_sum_is_array_to_json_and_log() {
        let (e, f) = compiled(
            "function (k, v, re) { log(v); return [sum(v), isArray(v), toJSON({a: 1})]; }",
        );
        let r = e.call(f, &[&json!(null), &json!([1, 2, 3.5]), &json!(true)]);
        assert_eq!(r.unwrap(), json!([6.5, true, "{\"a\":1}"]));
    }

    #[test]
    fn require_loads_commonjs_modules_from_the_design_doc() {
        let ddoc = json!({"views": {"lib": {
            "util": "var h = require('./helper'); exports.twice = function (x) { return h.k * x; };",
            "helper": "exports.k = 2;"
        }}});
        let e = Engine::new().unwrap();
        let f = e
            .compile(
                "function (doc) { emit(require('views/lib/util').twice(doc.n), null); }",
                &ddoc,
            )
            .unwrap();
        assert_eq!(e.map(f, r#"{"n":21}"#).unwrap()[0].0, json!(42));
    }

    #[test]
    fn coffeescript_functions_are_compiled_to_javascript() {
        let e = Engine::new().unwrap();
        let ddoc = json!({"language": "coffeescript"});
        let map = e
            .compile("(doc) -> if doc.foo\n  emit(doc.foo, 1)", &ddoc)
            .unwrap();
        assert_eq!(
            e.map(map, r#"{"foo":"x"}"#).unwrap(),
            vec![(json!("x"), json!(1))]
        );
        assert!(e.map(map, "{}").unwrap().is_empty());
        let reduce = e.compile("(keys, values) -> sum(values)", &ddoc).unwrap();
        let total = e.call(reduce, &[&json!(null), &json!([2, 3]), &json!(false)]);
        assert_eq!(total.unwrap(), json!(5));
        // A second engine reuses the translation without loading the compiler.
        let again = Engine::new().unwrap();
        again
            .compile("(keys, values) -> sum(values)", &ddoc)
            .unwrap();
        assert!(!again.coffee_loaded.get());
        let bad = e.compile("(doc) -> emit(", &ddoc).unwrap_err();
        assert!(bad.to_string().contains("CoffeeScript"), "{bad}");
    }

    #[test]
    fn sources_that_are_not_functions_are_refused() {
        let e = Engine::new().unwrap();
        assert!(matches!(
            e.compile("42", &json!({})),
            Err(JsError::Compile(_))
        ));
        assert!(matches!(
            e.compile("function (", &json!({})),
            Err(JsError::Compile(_))
        ));
    }

    #[test]
    fn an_endless_loop_is_stopped() {
        let (e, f) = compiled("function (doc) { while (true) {} }");
        assert_eq!(e.map(f, "{}"), Err(JsError::Timeout));
        assert!(!e.healthy());
        let (e, f) =
            compiled("function (doc) { try { while (true) {} } catch (x) {} emit(1, 1); }");
        assert_eq!(e.map(f, "{}"), Err(JsError::Timeout));
    }

    #[test]
    fn exponential_recursion_and_catastrophic_regexes_are_stopped() {
        let (e, f) = compiled("function (doc) { function f(n) { return n < 2 ? n : f(n-1) + f(n-2); } emit(f(60), 1); }");
        assert_eq!(e.map(f, "{}"), Err(JsError::Timeout));
        let (e, f) = compiled(
            "function (doc) { emit(/^(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'), 1); }",
        );
        assert!(matches!(
            e.map(f, "{}"),
            Err(JsError::Timeout | JsError::Thrown(_))
        ));
    }

    #[test]
    fn a_memory_bomb_runs_out_of_memory() {
        let (e, f) = compiled(
            "function (doc) { var a = []; while (true) a.push(new Array(100000).join('x')); }",
        );
        let r = e.map(f, "{}");
        assert!(
            matches!(r, Err(JsError::OutOfMemory | JsError::Timeout)),
            "{r:?}"
        );
        assert!(Engine::new().is_ok());
    }

    #[test]
    fn deep_recursion_overflows_the_stack_cleanly() {
        let (e, f) =
            compiled("function (doc) { function f(n) { return f(n + 1) + 1; } emit(f(0), 1); }");
        match e.map(f, "{}") {
            Err(JsError::Thrown(v)) => assert!(v.to_string().contains("stack"), "{v}"),
            other => panic!("{other:?}"),
        }
    }
}
