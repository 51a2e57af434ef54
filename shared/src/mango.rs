//! Mango queries and JSON indexes, without storage: the `_find` request,
//! index definitions as CouchDB stores them in `"language": "query"` design
//! documents, the composite index keys, and the planner that picks the index
//! CouchDB 3 would pick (`mango_idx_view` / `mango_cursor_view`) and turns
//! the selector into a key range.
//!
//! Index keys are the concatenated [`encode_key`] encodings of the indexed
//! fields (`encode_key_raw` for `_id`, which Mango compares raw). Each
//! encoding is self-delimiting and starts with a type tag below `0xFF`, so
//! byte order of the concatenation is the collation order of the field
//! tuple, and "every key starting with P" is the byte range `[P, P ‖ 0xFF)`.

use crate::all_docs::KeyRange;
use crate::collate::{encode_key, encode_key_raw};
use crate::error::{CouchError, CouchResult};
use crate::search::mango_text::TextDef;
use crate::selector::{field_path, value_at, Cond, Node, RangeOf, Selector};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use std::ops::Bound;

/// Mango's default `limit`.
pub const DEFAULT_LIMIT: u64 = 25;

/// Docs examined per result above which CouchDB warns that the index is
/// not selective (`index_scan_warning_threshold`).
pub const SCAN_WARNING_RATIO: u64 = 10;

pub const NO_INDEX_WARNING: &str =
    "No matching index found, create an index to optimize query time.";
pub const SCAN_WARNING: &str = "The number of documents examined is high in proportion to the number of results returned. Consider adding a more specific index to improve this.";

fn err(status: u16, error: &str, reason: impl Into<String>) -> CouchError {
    CouchError::new(status, error, reason)
}

// --- Sort specs (also the `fields` of an index) --------------------------

/// One sort field: name and whether descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortField {
    pub name: String,
    pub desc: bool,
}

/// Parses a sort spec, `["a", {"b": "desc"}]`, as `mango_sort:new/1`:
/// every field in one direction.
pub fn parse_sort(v: &Value) -> CouchResult<Vec<SortField>> {
    let bad_json = || {
        err(
            400,
            "invalid_sort_json",
            format!("Sort must be an array of sort specs, not: {v}"),
        )
    };
    let items = v.as_array().ok_or_else(bad_json)?;
    let mut out = Vec::new();
    for item in items {
        let field = match item {
            Value::String(s) => SortField {
                name: s.clone(),
                desc: false,
            },
            Value::Object(m) if m.len() == 1 => {
                let (k, dir) = m.iter().next().expect("one member");
                let desc = match dir.as_str() {
                    Some("asc") => false,
                    Some("desc") => true,
                    _ => {
                        return Err(err(
                            400,
                            "invalid_sort_dir",
                            format!("Invalid sort direction: {dir}"),
                        ))
                    }
                };
                SortField {
                    name: k.clone(),
                    desc,
                }
            }
            other => {
                return Err(err(
                    400,
                    "invalid_sort_field",
                    format!("Invalid sort field: {other}"),
                ))
            }
        };
        field_path(&field.name)?;
        out.push(field);
    }
    if out.windows(2).any(|w| w[0].desc != w[1].desc) {
        return Err(err(
            400,
            "unsupported_mixed_sort",
            "Sorts currently only support a single direction for all fields.",
        ));
    }
    Ok(out)
}

fn sort_json(fields: &[SortField]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| json!({ f.name.clone(): if f.desc { "desc" } else { "asc" } }))
            .collect(),
    )
}

// --- JSON indexes ----------------------------------------------------------

/// A JSON index, as defined by one view of a query design document.
#[derive(Debug, Clone)]
pub struct JsonIndex {
    pub ddoc: String,
    pub name: String,
    pub fields: Vec<SortField>,
    paths: Vec<Vec<String>>,
    pub partial: Option<Value>,
    partial_selector: Option<Selector>,
    /// Serves partition queries only (rows stored per partition).
    pub partitioned: bool,
}

impl JsonIndex {
    fn new(
        ddoc: String,
        name: String,
        fields: Vec<SortField>,
        partial: Option<Value>,
    ) -> CouchResult<JsonIndex> {
        let paths = fields
            .iter()
            .map(|f| field_path(&f.name))
            .collect::<CouchResult<_>>()?;
        let partial_selector = partial.as_ref().map(Selector::parse).transpose()?;
        Ok(JsonIndex {
            ddoc,
            name,
            fields,
            paths,
            partial,
            partial_selector,
            partitioned: false,
        })
    }

    /// The JSON indexes of a design document (none unless its language is
    /// `query`); views that do not parse are skipped, as CouchDB skips them.
    /// In a partitioned database they are partitioned unless the design
    /// document says `options.partitioned: false`.
    pub fn from_design_doc(
        id: &str,
        body: &Map<String, Value>,
        db_partitioned: bool,
    ) -> Vec<JsonIndex> {
        let partitioned = db_partitioned && !crate::view::design_says_global(body);
        if body.get("language").and_then(Value::as_str) != Some("query") {
            return Vec::new();
        }
        let Some(views) = body.get("views").and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut out: Vec<JsonIndex> = views
            .iter()
            .filter_map(|(name, view)| {
                let def = view.pointer("/options/def");
                let map = view.get("map");
                let fields = match def.and_then(|d| d.get("fields")) {
                    Some(f) => parse_sort(f).ok()?,
                    None => map?
                        .get("fields")?
                        .as_object()?
                        .iter()
                        .map(|(k, d)| SortField {
                            name: k.clone(),
                            desc: d == "desc",
                        })
                        .collect(),
                };
                if fields.is_empty()
                    || view
                        .pointer("/options/def/type")
                        .is_some_and(|t| t != "json")
                {
                    return None;
                }
                let partial = def
                    .and_then(|d| d.get("partial_filter_selector"))
                    .or_else(|| map.and_then(|m| m.get("partial_filter_selector")))
                    .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
                    .cloned();
                let idx = JsonIndex::new(id.to_string(), name.clone(), fields, partial).ok()?;
                Some(JsonIndex { partitioned, ..idx })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// What the stored rows depend on: when it changes, the index is rebuilt.
    pub fn signature(&self) -> String {
        let mut sig = json!({"fields": sort_json(&self.fields), "partial": self.partial});
        // Only when set, so global indexes keep the signatures they had.
        if self.partitioned {
            sig["partitioned"] = json!(true);
        }
        sig.to_string()
    }

    /// `def` as `GET /db/_index` shows it.
    pub fn def_json(&self) -> Value {
        let mut def = json!({"fields": sort_json(&self.fields)});
        if let Some(p) = &self.partial {
            def["partial_filter_selector"] = p.clone();
        }
        def
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ddoc": self.ddoc,
            "name": self.name,
            "type": "json",
            "partitioned": self.partitioned,
            "def": self.def_json(),
        })
    }

    /// The view as it is stored in the design document (CouchDB's layout).
    pub fn view_json(&self) -> Value {
        let mut fields = Map::new();
        for f in &self.fields {
            fields.insert(f.name.clone(), json!(if f.desc { "desc" } else { "asc" }));
        }
        let mut map = json!({"fields": fields});
        map["partial_filter_selector"] = self.partial.clone().unwrap_or_else(|| json!({}));
        json!({
            "map": map,
            "reduce": "_count",
            "options": {"def": self.def_json()},
        })
    }

    pub fn columns(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }

    /// The index key of a document body (with `_id`): `None` when a field
    /// is missing (CouchDB does not index such documents) or the partial
    /// filter rejects the document.
    pub fn key(&self, doc: &Value) -> Option<Vec<u8>> {
        if let Some(p) = &self.partial_selector {
            if !p.matches(doc) {
                return None;
            }
        }
        let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
        let mut key = match crate::partition::of(id).filter(|_| self.partitioned) {
            Some(p) => crate::partition::key_prefix(p),
            None => Vec::new(),
        };
        for (f, path) in self.fields.iter().zip(&self.paths) {
            let v = value_at(doc, path)?;
            key.extend(encode_column(&f.name, v));
        }
        Some(key)
    }
}

fn encode_column(field: &str, v: &Value) -> Vec<u8> {
    if field == "_id" {
        encode_key_raw(v)
    } else {
        encode_key(v)
    }
}

/// A `POST /db/_index` request, validated.
#[derive(Debug)]
pub struct NewIndex {
    pub index: JsonIndex,
    /// The `index` member as the client sent it: CouchDB keeps it verbatim
    /// as the view's `options.def`.
    given: Value,
    /// `partitioned`, if given (else the database's kind).
    pub partitioned: Option<bool>,
}

/// A `POST /db/_index` request for a `text` index, validated.
#[derive(Debug)]
pub struct NewTextIndex {
    pub ddoc: String,
    pub name: String,
    pub def: TextDef,
    pub partitioned: Option<bool>,
}

/// A `POST /db/_index` body's keys and `type`.
fn index_type(body: &Map<String, Value>) -> CouchResult<&str> {
    for k in body.keys() {
        // `w` is a cluster write quorum: accepted and meaningless on one node.
        if !["index", "ddoc", "name", "type", "partitioned", "w"].contains(&k.as_str()) {
            return Err(err(
                400,
                "invalid_key",
                format!("Invalid key {k} for this request."),
            ));
        }
    }
    match body.get("type") {
        None => Ok("json"),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(err(
            400,
            "invalid_index",
            format!("Invalid type for index: {other}"),
        )),
    }
}

impl NewTextIndex {
    /// The request, when it asks for a `text` index.
    pub fn parse(body: &Map<String, Value>) -> CouchResult<Option<NewTextIndex>> {
        if index_type(body)? != "text" {
            return Ok(None);
        }
        let index = match body.get("index") {
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(err(
                    400,
                    "invalid_index",
                    format!("Text indexes must be an object, not: {other}"),
                ))
            }
            None => {
                return Err(err(
                    400,
                    "missing_required_key",
                    "Missing required key: index",
                ))
            }
        };
        let def = TextDef::from_request(index)?;
        let (ddoc, name, partitioned) = index_names(body, &def.to_json())?;
        Ok(Some(NewTextIndex {
            ddoc,
            name,
            def,
            partitioned,
        }))
    }
}

impl NewIndex {
    pub fn parse(body: &Map<String, Value>) -> CouchResult<NewIndex> {
        let ty = index_type(body)?;
        match ty {
            "json" => {}
            // CouchDB answers this without a search service (Nouveau).
            "nouveau" => {
                return Err(err(
                    503,
                    "required index service unavailable",
                    ty.to_string(),
                ))
            }
            other => {
                return Err(err(
                    400,
                    "invalid_index",
                    format!("Invalid type for index: {other}"),
                ))
            }
        }
        let index = body
            .get("index")
            .ok_or_else(|| err(400, "missing_required_key", "Missing required key: index"))?;
        let index = index.as_object().ok_or_else(|| {
            err(
                400,
                "invalid_index",
                format!("JSON indexes must be an object, not: {index}"),
            )
        })?;
        let fields = index
            .get("fields")
            .ok_or_else(|| err(400, "missing_required_key", "Missing required key: fields"))?;
        let fields = parse_sort(fields)?;
        if fields.is_empty() {
            return Err(err(
                400,
                "invalid_index_fields_definition",
                "Index fields must not be empty",
            ));
        }
        let partial = match index.get("partial_filter_selector") {
            None => None,
            Some(p) => {
                Selector::parse(p)?;
                Some(p.clone()).filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
            }
        };
        let mut def = json!({"fields": sort_json(&fields)});
        if let Some(p) = &partial {
            def["partial_filter_selector"] = p.clone();
        }
        let (ddoc, name, partitioned) = index_names(body, &def)?;
        Ok(NewIndex {
            index: JsonIndex::new(ddoc, name, fields, partial)?,
            given: Value::Object(index.clone()),
            partitioned,
        })
    }

    /// The view the index is stored as in its design document.
    pub fn view_json(&self) -> Value {
        let mut view = self.index.view_json();
        view["options"]["def"] = self.given.clone();
        view
    }
}

/// A new index's design document id, name and `partitioned` option, from
/// a `POST /db/_index` body whose definition is `def`. Generated names
/// hash the definition with the options given (as mango_idx's
/// `gen_name`), so a differently named copy of an index gets its own
/// design document.
pub fn index_names(
    body: &Map<String, Value>,
    def: &Value,
) -> CouchResult<(String, String, Option<bool>)> {
    let string = |k: &str| -> CouchResult<Option<String>> {
        match body.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(err(
                400,
                "invalid_index_name",
                format!("Invalid index name: {other}"),
            )),
        }
    };
    let options: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "index" | "w"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let hash: String = Sha1::digest(json!([def, options]).to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    uint_opt(body, "w", 2, true)?;
    let partitioned = match body.get("partitioned") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(err(
                400,
                "invalid_partitioned_value",
                format!("Invalid partitioned value: {other}"),
            ))
        }
    };
    let name = string("name")?.unwrap_or_else(|| hash.clone());
    let ddoc = match string("ddoc")? {
        Some(d) if d.starts_with("_design/") => d,
        Some(d) => format!("_design/{d}"),
        None => format!("_design/{hash}"),
    };
    Ok((ddoc, name, partitioned))
}

/// The special `_all_docs` index as `GET /db/_index` lists it.
pub fn all_docs_index_json() -> Value {
    json!({
        "ddoc": null,
        "name": "_all_docs",
        "type": "special",
        "def": {"fields": [{"_id": "asc"}]},
    })
}

// --- The _find request -------------------------------------------------------

/// A `POST /db/_find` (or `_explain`) body, validated.
#[derive(Debug, Clone)]
pub struct FindQuery {
    pub selector: Selector,
    pub fields: Option<Vec<String>>,
    field_paths: Vec<Vec<String>>,
    pub sort: Vec<SortField>,
    pub limit: u64,
    pub skip: u64,
    pub bookmark: Option<Bookmark>,
    pub bookmark_raw: Option<String>,
    pub use_index: Vec<String>,
    pub conflicts: bool,
    pub r: u64,
    pub update: bool,
    pub stable: bool,
    pub stale: bool,
    pub execution_stats: bool,
    pub allow_fallback: bool,
}

fn bool_opt(body: &Map<String, Value>, k: &str, default: bool) -> CouchResult<bool> {
    match body.get(k) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(
            400,
            "invalid_boolean",
            format!("Invalid boolean value: {other}"),
        )),
    }
}

fn uint_opt(body: &Map<String, Value>, k: &str, default: u64, positive: bool) -> CouchResult<u64> {
    match body.get(k) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if !positive || n > 0 => Ok(n),
            _ if positive => Err(err(
                400,
                "invalid_pos_integer",
                format!("{v} is not an integer greater than zero"),
            )),
            _ => Err(err(
                400,
                "invalid_non_neg_integer",
                format!("{v} is not an integer greater than or equal to zero"),
            )),
        },
    }
}

/// `use_index` as `mango_opts:validate_use_index/1` reads it: a design
/// document name (with or without `_design/`), `"ddoc/index"`, a list of
/// one or two names, or null/`[]` for none.
fn parse_use_index(v: Option<&Value>) -> CouchResult<Vec<String>> {
    let bad = |v: &Value| {
        err(
            400,
            "invalid_index_name",
            format!("Invalid index name: {v}"),
        )
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => {
            let rest = s.strip_prefix("_design/").unwrap_or(s);
            Ok(match rest.split_once('/') {
                Some((d, n)) => vec![d.to_string(), n.to_string()],
                _ => vec![rest.to_string()],
            })
        }
        Some(Value::Array(a)) if a.len() <= 2 && a.iter().all(Value::is_string) => Ok(a
            .iter()
            .map(|v| v.as_str().expect("checked").to_string())
            .collect()),
        Some(other) => Err(bad(other)),
    }
}

/// `stale`: `"ok"`, or `false`/`"false"` (`mango_opts:is_ok_or_false/1`).
fn parse_stale(v: Option<&Value>) -> CouchResult<bool> {
    match v {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(Value::String(s)) if s == "ok" => Ok(true),
        Some(other) => Err(err(
            400,
            "invalid_ok_or_false_value",
            format!("Invalid value for stale: {other}"),
        )),
    }
}

impl FindQuery {
    pub fn parse(body: &Map<String, Value>) -> CouchResult<FindQuery> {
        const KEYS: &[&str] = &[
            "selector",
            "fields",
            "sort",
            "limit",
            "skip",
            "bookmark",
            "use_index",
            "conflicts",
            "r",
            "update",
            "stable",
            "stale",
            "execution_stats",
            "allow_fallback",
            "partition",
        ];
        if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(err(
                400,
                "invalid_key",
                format!("Invalid key {k} for this request."),
            ));
        }
        let selector = body.get("selector").ok_or_else(|| {
            err(
                400,
                "missing_required_key",
                "Missing required key: selector",
            )
        })?;
        let selector = Selector::parse(selector)?;
        let fields = match body.get("fields") {
            None => None,
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(
                a.iter()
                    .map(|f| f.as_str().expect("checked").to_string())
                    .collect::<Vec<_>>(),
            ),
            Some(other) => {
                return Err(err(
                    400,
                    "invalid_fields",
                    format!("Fields must be an array of strings, not: {other}"),
                ))
            }
        };
        let field_paths = fields
            .iter()
            .flatten()
            .map(|f| field_path(f))
            .collect::<CouchResult<_>>()?;
        let sort = match body.get("sort") {
            None => Vec::new(),
            Some(s) => parse_sort(s)?,
        };
        let use_index = parse_use_index(body.get("use_index"))?;
        let bookmark_raw = match body.get("bookmark") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(err(
                    400,
                    "invalid_string",
                    format!("Invalid string: {other}"),
                ))
            }
        };
        let bookmark = match bookmark_raw.as_deref() {
            None | Some("nil") | Some("") => None,
            Some(b) => Some(Bookmark::decode(b)?),
        };
        Ok(FindQuery {
            selector,
            fields,
            field_paths,
            sort,
            limit: uint_opt(body, "limit", DEFAULT_LIMIT, false)?,
            skip: uint_opt(body, "skip", 0, false)?,
            bookmark,
            bookmark_raw,
            use_index,
            conflicts: bool_opt(body, "conflicts", false)?,
            r: uint_opt(body, "r", 1, true)?,
            update: bool_opt(body, "update", true)?,
            stable: bool_opt(body, "stable", false)?,
            stale: parse_stale(body.get("stale"))?,
            execution_stats: bool_opt(body, "execution_stats", false)?,
            allow_fallback: bool_opt(body, "allow_fallback", true)?,
        })
    }

    /// Whether the sort runs backwards (every field is descending).
    pub fn descending(&self) -> bool {
        self.sort.first().is_some_and(|f| f.desc)
    }

    /// The document reduced to the requested `fields` (nested fields keep
    /// their nesting; missing ones are left out).
    pub fn project(&self, doc: Value) -> Value {
        if self.fields.is_none() {
            return doc;
        }
        let mut out = Map::new();
        for path in &self.field_paths {
            if let Some(v) = value_at(&doc, path) {
                insert_at(&mut out, path, v.clone());
            }
        }
        Value::Object(out)
    }

    /// `opts` as `_explain` shows them.
    pub fn opts_json(&self) -> Value {
        json!({
            "use_index": self.use_index,
            "bookmark": self.bookmark_raw.clone().unwrap_or_else(|| "nil".into()),
            "limit": self.limit,
            "skip": self.skip,
            "sort": self.sort.iter().map(|f| (f.name.clone(), json!(if f.desc {"desc"} else {"asc"}))).collect::<Map<_, _>>(),
            "fields": self.fields.clone().map_or_else(|| json!("all_fields"), |f| json!(f)),
            "partition": "",
            "r": self.r,
            "conflicts": self.conflicts,
            "stale": self.stale,
            "update": self.update,
            "stable": self.stable,
            "execution_stats": self.execution_stats,
            "allow_fallback": self.allow_fallback,
        })
    }
}

fn insert_at(obj: &mut Map<String, Value>, path: &[String], v: Value) {
    match path {
        [] => {}
        [last] => {
            obj.insert(last.clone(), v);
        }
        [first, rest @ ..] => {
            let slot = obj
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = slot {
                insert_at(inner, rest, v);
            }
        }
    }
}

// --- Bookmarks ---------------------------------------------------------------

/// Where the last page stopped: the index key (empty for `_all_docs`) and
/// document id of its last row. Opaque to clients (base64url of JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookmark {
    pub key: Vec<u8>,
    pub id: String,
}

impl Bookmark {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(json!([URL_SAFE_NO_PAD.encode(&self.key), self.id]).to_string())
    }

    pub fn decode(s: &str) -> CouchResult<Bookmark> {
        let bad = || {
            err(
                400,
                "invalid_bookmark",
                format!("Invalid bookmark value: {}", Value::String(s.into())),
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        match v.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(id)]) => Ok(Bookmark {
                key: URL_SAFE_NO_PAD.decode(k).map_err(|_| bad())?,
                id: id.clone(),
            }),
            _ => Err(bad()),
        }
    }
}

// --- Planning ----------------------------------------------------------------

/// Whether every document the selector matches must have `field` (any
/// condition but `$exists: false`; in every branch of an `$or`), as
/// `mango_selector:has_required_fields/2`.
fn requires(node: &Node, field: &str) -> bool {
    match node {
        Node::And(kids) => kids.iter().any(|k| requires(k, field)),
        Node::Or(kids) => !kids.is_empty() && kids.iter().all(|k| requires(k, field)),
        Node::Field(f) => f.field == field && !matches!(f.cond, Cond::Exists(false)),
    }
}

/// The byte range of index keys a query may touch: `lower <= key` (or `<`)
/// and `key < upper` (or `<=`), from the selector's ranges on the index's
/// leading fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyBounds {
    pub lower: Option<(Vec<u8>, bool)>,
    pub upper: Option<(Vec<u8>, bool)>,
    /// Contradictory conditions: nothing can match.
    pub empty: bool,
    /// The bounds as JSON arrays, for `_explain`'s `mrargs`.
    pub start_key: Vec<Value>,
    pub end_key: Vec<Value>,
}

/// What `_find` will scan.
#[derive(Debug, Clone)]
pub enum Access {
    /// `_all_docs`, over this id range.
    AllDocs(KeyRange),
    /// The JSON index at this position of the candidate list.
    Json(usize, KeyBounds),
    /// A text index (by position in its own list), with the Lucene query
    /// of the selector.
    Text(usize, String),
}

/// The chosen index, the scan, and what `_explain` reports.
#[derive(Debug, Clone)]
pub struct Plan {
    pub access: Access,
    pub descending: bool,
    pub warnings: Vec<String>,
    /// Every index considered, with `analysis` (usable, reasons, ranking).
    pub candidates: Vec<Value>,
    /// The chosen index as `GET /_index` shows it.
    pub index_json: Value,
}

fn ranges_for(selector: &Selector) -> Vec<(String, RangeOf)> {
    selector.field_ranges()
}

/// Leading columns of `idx` whose range the selector narrows.
fn prefix_len(idx: &JsonIndex, ranges: &[(String, RangeOf)]) -> usize {
    let mut n = 0;
    for col in idx.columns() {
        match ranges.iter().find(|(f, _)| f == col) {
            Some((_, r)) => {
                n += 1;
                if r.point().is_none() {
                    break;
                }
            }
            None => break,
        }
    }
    n
}

/// Why an index cannot serve the query (`_explain` reason names of CouchDB
/// 3.3), or `None` if it can.
fn unusable_reason(idx: &JsonIndex, q: &FindQuery, named: bool) -> Option<&'static str> {
    let cols = idx.columns();
    let sort: Vec<&str> = q.sort.iter().map(|f| f.name.as_str()).collect();
    let required = cols
        .iter()
        .filter(|c| !sort.contains(c) && !["_id", "_rev"].contains(c));
    let has_fields = match q.selector.root() {
        None => required.count() == 0,
        Some(root) => required.into_iter().all(|c| requires(root, c)),
    };
    if !has_fields {
        return Some(if q.selector.is_empty() {
            "empty_selector"
        } else {
            "field_mismatch"
        });
    }
    if !can_use_sort(&cols, &sort, &q.selector) {
        return Some("sort_order_mismatch");
    }
    if idx.partial.is_some() && !named {
        return Some("is_partial");
    }
    None
}

/// `mango_idx_view:can_use_sort/3`: the sort fields are a prefix of the
/// columns once leading columns fixed by an `$eq` are dropped.
fn can_use_sort(cols: &[&str], sort: &[&str], selector: &Selector) -> bool {
    if sort.is_empty() {
        return true;
    }
    let ranges = ranges_for(selector);
    let mut cols = cols;
    loop {
        match cols.first() {
            None => return false,
            Some(c) if *c == sort[0] => return cols.starts_with(sort),
            Some(c) => {
                let constant = ranges.iter().any(|(f, r)| f == c && r.point().is_some());
                if !constant {
                    return false;
                }
                cols = &cols[1..];
            }
        }
    }
}

fn named_by(idx: &JsonIndex, use_index: &[String]) -> bool {
    names_index(&idx.ddoc, &idx.name, use_index)
}

/// Whether `use_index` names the index `name` of design document `ddoc`
/// (`_design/...`).
pub fn names_index(ddoc: &str, name: &str, use_index: &[String]) -> bool {
    let Some(d) = use_index.first() else {
        return false;
    };
    d.strip_prefix("_design/").unwrap_or(d) == ddoc.trim_start_matches("_design/")
        && use_index.get(1).is_none_or(|n| n == name)
}

/// The key bounds of a scan of `idx` for the selector.
pub fn key_bounds(idx: &JsonIndex, selector: &Selector) -> KeyBounds {
    let ranges = ranges_for(selector);
    let mut b = KeyBounds::default();
    let mut prefix = Vec::new();
    let mut ranged = false;
    for col in idx.columns() {
        let Some((_, r)) = ranges.iter().find(|(f, _)| f == col) else {
            break;
        };
        if r.is_empty() {
            b.empty = true;
            return b;
        }
        if let Some(p) = r.point() {
            prefix.extend(encode_column(col, p));
            b.start_key.push(p.clone());
            b.end_key.push(p.clone());
            continue;
        }
        ranged = true;
        let with = |v: &Value, tail: bool| {
            let mut k = prefix.clone();
            k.extend(encode_column(col, v));
            if tail {
                k.push(0xFF);
            }
            k
        };
        b.lower = match &r.lower {
            Bound::Included(v) => Some((with(v, false), true)),
            Bound::Excluded(v) => Some((with(v, true), true)),
            Bound::Unbounded => (!prefix.is_empty()).then(|| (prefix.clone(), true)),
        };
        b.upper = match &r.upper {
            Bound::Included(v) => Some((with(v, true), false)),
            Bound::Excluded(v) => Some((with(v, false), false)),
            Bound::Unbounded => (!prefix.is_empty()).then(|| {
                let mut k = prefix.clone();
                k.push(0xFF);
                (k, false)
            }),
        };
        match &r.lower {
            Bound::Included(v) | Bound::Excluded(v) => b.start_key.push(v.clone()),
            Bound::Unbounded => b.start_key.push(Value::Null),
        }
        match &r.upper {
            Bound::Included(v) | Bound::Excluded(v) => b.end_key.push(v.clone()),
            Bound::Unbounded => b.end_key.push(json!("<MAX>")),
        }
        break;
    }
    if !ranged && !prefix.is_empty() {
        b.lower = Some((prefix.clone(), true));
        let mut hi = prefix;
        hi.push(0xFF);
        b.upper = Some((hi, false));
    }
    b.end_key.push(json!("<MAX>"));
    b
}

/// The `_id` range the selector allows, for an `_all_docs` scan. Ids are
/// strings, the greatest type in raw collation.
pub fn id_range(selector: &Selector) -> KeyRange {
    let mut out = KeyRange::default();
    let Some((_, r)) = ranges_for(selector).into_iter().find(|(f, _)| f == "_id") else {
        return out;
    };
    if r.is_empty() {
        out.empty = true;
        return out;
    }
    match &r.lower {
        Bound::Included(Value::String(s)) => out.lo = Some((s.clone(), true)),
        Bound::Excluded(Value::String(s)) => out.lo = Some((s.clone(), false)),
        _ => {}
    }
    match &r.upper {
        Bound::Included(Value::String(s)) => out.hi = Some((s.clone(), true)),
        Bound::Excluded(Value::String(s)) => out.hi = Some((s.clone(), false)),
        Bound::Unbounded => {}
        _ => out.empty = true,
    }
    out
}

/// Chooses the index for `q` among `indexes` as CouchDB 3 does: a usable
/// index named by `use_index`, else the usable one with the longest
/// narrowed prefix, then the fewest fields, then the first by (ddoc, name);
/// `_all_docs` when none is usable (if the sort allows it).
pub fn plan(q: &FindQuery, indexes: &[JsonIndex]) -> CouchResult<Plan> {
    let ranges = ranges_for(&q.selector);
    let mut usable: Vec<(usize, usize)> = Vec::new();
    let mut reasons: Vec<Option<&'static str>> = Vec::new();
    for (i, idx) in indexes.iter().enumerate() {
        let named = named_by(idx, &q.use_index);
        let reason = unusable_reason(idx, q, named);
        if reason.is_none() {
            usable.push((i, prefix_len(idx, &ranges)));
        }
        reasons.push(reason);
    }
    usable.sort_by(|(a, pa), (b, pb)| {
        pb.cmp(pa)
            .then(indexes[*a].fields.len().cmp(&indexes[*b].fields.len()))
            .then(
                (&indexes[*a].ddoc, &indexes[*a].name).cmp(&(&indexes[*b].ddoc, &indexes[*b].name)),
            )
    });
    let mut warnings = Vec::new();
    let sort_is_id = q.sort.is_empty() || (q.sort.len() == 1 && q.sort[0].name == "_id");
    let all_docs_named = q.use_index.first().is_some_and(|d| d == "_all_docs");
    let chosen = if q.use_index.is_empty() || all_docs_named {
        if all_docs_named && sort_is_id {
            None
        } else {
            usable.first().map(|(i, _)| *i)
        }
    } else {
        match usable
            .iter()
            .find(|(i, _)| named_by(&indexes[*i], &q.use_index))
        {
            Some((i, _)) => Some(*i),
            None => {
                let ddoc = q.use_index[0].trim_start_matches("_design/");
                warnings.push(match q.use_index.get(1) {
                    None => format!(
                        "_design/{ddoc} was not used because it does not contain a valid index for this query."
                    ),
                    Some(n) => format!(
                        "_design/{ddoc}, {n} was not used because it is not a valid index for this query."
                    ),
                });
                usable.first().map(|(i, _)| *i)
            }
        }
    };
    if chosen.is_none() {
        if !sort_is_id {
            return Err(err(400, "no_usable_index", NO_SORT_INDEX));
        }
        if !q.allow_fallback && !all_docs_named {
            return Err(err(
                400,
                "no_usable_index",
                "No index exists for this selector, try indexing the fields it uses.",
            ));
        }
        warnings.push(NO_INDEX_WARNING.to_string());
    }
    let rank_of = |i: usize| usable.iter().position(|(j, _)| *j == i);
    let mut candidates: Vec<Value> = Vec::new();
    candidates.push(json!({
        "index": all_docs_index_json(),
        "analysis": {
            "usable": sort_is_id,
            "reasons": if chosen.is_none() { json!([]) } else if sort_is_id { json!([{"name": "unfavored_type"}]) } else { json!([{"name": "sort_order_mismatch"}]) },
            "ranking": if chosen.is_none() { 0 } else { usable.len() + 1 },
            "covering": null,
        }
    }));
    for (i, idx) in indexes.iter().enumerate() {
        let (usable_now, why) = match (reasons[i], chosen) {
            (Some(r), _) => (false, Some(r)),
            (None, Some(c)) if c == i => (true, None),
            (None, Some(c)) => {
                let (a, b) = (&indexes[c], idx);
                let why = if prefix_len(b, &ranges) < prefix_len(a, &ranges) {
                    "less_overlap"
                } else if b.fields.len() > a.fields.len() {
                    "too_many_fields"
                } else if !q.use_index.is_empty() && !named_by(b, &q.use_index) {
                    "excluded_by_user"
                } else {
                    "alphabetically_comes_after"
                };
                (true, Some(why))
            }
            (None, None) => (true, Some("excluded_by_user")),
        };
        if chosen == Some(i) {
            continue;
        }
        candidates.push(json!({
            "index": idx.to_json(),
            "analysis": {
                "usable": usable_now,
                "reasons": why.map_or_else(|| json!([]), |w| json!([{"name": w}])),
                "ranking": rank_of(i).map_or(2, |r| r),
                "covering": false,
            }
        }));
    }
    let (access, index_json) = match chosen {
        Some(i) => (
            Access::Json(i, key_bounds(&indexes[i], &q.selector)),
            indexes[i].to_json(),
        ),
        None => (
            Access::AllDocs(id_range(&q.selector)),
            all_docs_index_json(),
        ),
    };
    Ok(Plan {
        access,
        descending: q.descending(),
        warnings,
        candidates,
        index_json,
    })
}

const NO_SORT_INDEX: &str = "No index exists for this sort, try indexing by the sort fields.";

/// [`plan`]'s error in a partitioned database, where the planner looked
/// only at partitioned indexes (a partition query) or only at global ones,
/// and says which (`mango_error`'s `missing_sort_index_partitioned` and
/// `missing_sort_index_global`).
pub fn in_partitioned_db(e: CouchError, partition_query: bool) -> CouchError {
    if e.reason != NO_SORT_INDEX {
        return e;
    }
    let kind = if partition_query {
        "partitioned"
    } else {
        "global"
    };
    err(
        400,
        "no_usable_index",
        format!("No {kind} index exists for this sort, try indexing by the sort fields."),
    )
}

/// `selector_hints` of `_explain`: which selector fields a JSON index could use.
pub fn selector_hints(selector: &Selector) -> Value {
    let ranged: Vec<String> = ranges_for(selector).into_iter().map(|(f, _)| f).collect();
    let other: Vec<String> = selector
        .fields()
        .into_iter()
        .filter(|f| !ranged.contains(f))
        .collect();
    json!([{"type": "json", "indexable_fields": ranged, "unindexable_fields": other}])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(ddoc: &str, name: &str, fields: &[&str]) -> JsonIndex {
        JsonIndex::new(
            ddoc.into(),
            name.into(),
            fields
                .iter()
                .map(|f| SortField {
                    name: f.to_string(),
                    desc: false,
                })
                .collect(),
            None,
        )
        .unwrap()
    }

    fn q(v: Value) -> FindQuery {
        FindQuery::parse(v.as_object().unwrap()).unwrap()
    }

    fn chosen(p: &Plan) -> Option<usize> {
        match p.access {
            Access::Json(i, _) => Some(i),
            Access::AllDocs(_) | Access::Text(..) => None,
        }
    }

    /// What `mango_opts` accepts, Settee accepts: cluster options, nulls
    /// for "none", `stale` as `"ok"`/`false`, `use_index` in every form.
    #[test]
    fn options_as_lenient_as_couchdb() {
        let idx_body = json!({"index": {"fields": ["a"]}, "w": 3});
        assert!(NewIndex::parse(idx_body.as_object().unwrap()).is_ok());
        let bad_w = json!({"index": {"fields": ["a"]}, "w": 0});
        assert_eq!(
            NewIndex::parse(bad_w.as_object().unwrap())
                .unwrap_err()
                .error,
            "invalid_pos_integer"
        );
        let find = q(
            json!({"selector": {}, "use_index": null, "r": 1, "bookmark": null,
                            "stale": "false", "conflicts": false}),
        );
        assert!(find.use_index.is_empty() && !find.stale && find.bookmark.is_none());
        assert!(q(json!({"selector": {}, "stale": "ok"})).stale);
        assert_eq!(
            q(json!({"selector": {}, "use_index": []})).use_index,
            Vec::<String>::new()
        );
        assert_eq!(
            q(json!({"selector": {}, "use_index": "_design/d"})).use_index,
            ["d"]
        );
        assert_eq!(
            q(json!({"selector": {}, "use_index": "d/i"})).use_index,
            ["d", "i"]
        );
        assert_eq!(
            q(json!({"selector": {}, "use_index": "_design/d/i"})).use_index,
            ["d", "i"]
        );
        for bad in [
            json!({"selector": {}, "use_index": 1}),
            json!({"selector": {}, "stale": true}),
            json!({"selector": {}, "r": 0}),
            json!({"selector": {}, "q": 1}),
        ] {
            assert_eq!(
                FindQuery::parse(bad.as_object().unwrap())
                    .unwrap_err()
                    .status,
                400
            );
        }
    }

    #[test]
    fn composite_keys_order_as_tuples() {
        let i = idx("_design/a", "a", &["x", "y"]);
        let docs = [
            json!({"x": 1, "y": "b"}),
            json!({"x": 1, "y": "B"}),
            json!({"x": 1, "y": [1]}),
            json!({"x": 2, "y": null}),
            json!({"x": "1", "y": 0}),
        ];
        let mut keys: Vec<(Vec<u8>, usize)> = docs
            .iter()
            .enumerate()
            .map(|(n, d)| (i.key(d).unwrap(), n))
            .collect();
        keys.sort();
        let order: Vec<usize> = keys.into_iter().map(|(_, n)| n).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert!(
            i.key(&json!({"x": 1})).is_none(),
            "missing field: not indexed"
        );
    }

    #[test]
    fn bounds_cover_exactly_the_range() {
        let i = idx("_design/a", "a", &["x", "y"]);
        let sel = q(json!({"selector": {"x": 1, "y": {"$gt": 2, "$lte": 5}}})).selector;
        let b = key_bounds(&i, &sel);
        let inside = |d: Value| {
            let k = i.key(&d).unwrap();
            let lo = b
                .lower
                .as_ref()
                .is_none_or(|(l, inc)| if *inc { k >= *l } else { k > *l });
            let hi = b
                .upper
                .as_ref()
                .is_none_or(|(u, inc)| if *inc { k <= *u } else { k < *u });
            lo && hi
        };
        assert!(!inside(json!({"x": 1, "y": 2})));
        assert!(inside(json!({"x": 1, "y": 2.5})));
        assert!(inside(json!({"x": 1, "y": 5})));
        assert!(!inside(json!({"x": 1, "y": 5.1})));
        assert!(!inside(json!({"x": 2, "y": 3})));
        let b = key_bounds(&i, &q(json!({"selector": {"x": 1}})).selector);
        let k = i.key(&json!({"x": 1, "y": {"z": [1]}})).unwrap();
        assert!(k >= b.lower.clone().unwrap().0 && k < b.upper.clone().unwrap().0);
        let k = i.key(&json!({"x": 1.5, "y": null})).unwrap();
        assert!(k >= b.upper.unwrap().0);
        assert!(
            key_bounds(
                &i,
                &q(json!({"selector": {"x": {"$gt": 3, "$lt": 2}}})).selector
            )
            .empty
        );
    }

    #[test]
    fn planner_picks_like_couchdb() {
        let indexes = vec![
            idx("_design/ab", "ab", &["a", "b"]),
            idx("_design/a", "a", &["a"]),
            idx("_design/b", "b", &["b"]),
            idx("_design/abc", "abc", &["a", "b", "c"]),
        ];
        let cases: Vec<(Value, Option<usize>)> = vec![
            (json!({"selector": {"a": 1}}), Some(1)),
            (json!({"selector": {"a": 1, "b": 2}}), Some(0)),
            (json!({"selector": {"b": {"$gt": 1}}}), Some(2)),
            (json!({"selector": {"a": 1, "b": 2, "c": 3}}), Some(3)),
            (json!({"selector": {"c": 1}}), None),
            (json!({"selector": {"a": 1}, "sort": ["b"]}), Some(0)),
            (
                json!({"selector": {"a": {"$gt": 1}}, "sort": ["a"]}),
                Some(1),
            ),
            (
                json!({"selector": {"a": 1, "b": 2}, "use_index": "abc"}),
                Some(0),
            ),
            (
                json!({"selector": {"a": 1, "b": 2, "c": {"$gt": 0}}}),
                Some(3),
            ),
            (
                json!({"selector": {"a": 1, "b": 2, "c": {"$gt": 0}}, "use_index": "ab"}),
                Some(0),
            ),
            (
                json!({"selector": {"a": 1}, "use_index": ["_design/b", "b"]}),
                Some(1),
            ),
            (json!({"selector": {"$or": [{"a": 1}, {"a": 2}]}}), Some(1)),
            (json!({"selector": {"$or": [{"a": 1}, {"b": 2}]}}), None),
            (json!({"selector": {"a": {"$exists": false}}}), None),
            (json!({"selector": {}, "sort": ["_id"]}), None),
        ];
        for (query, want) in cases {
            let p = plan(&q(query.clone()), &indexes).unwrap();
            assert_eq!(chosen(&p), want, "{query}");
        }
        let p = plan(
            &q(json!({"selector": {"a": 1}, "use_index": "b"})),
            &indexes,
        )
        .unwrap();
        assert_eq!(
            p.warnings,
            vec![
                "_design/b was not used because it does not contain a valid index for this query."
            ]
        );
        let e = plan(&q(json!({"selector": {"c": 1}, "sort": ["c"]})), &indexes).unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (400, "no_usable_index"));
    }

    #[test]
    fn partial_indexes_need_use_index() {
        let mut p = idx("_design/p", "p", &["a"]);
        p.partial = Some(json!({"t": "x"}));
        let indexes = vec![p];
        let plain = plan(&q(json!({"selector": {"a": 1}})), &indexes).unwrap();
        assert_eq!(chosen(&plain), None);
        let named = plan(
            &q(json!({"selector": {"a": 1}, "use_index": "p"})),
            &indexes,
        )
        .unwrap();
        assert_eq!(chosen(&named), Some(0));
    }

    #[test]
    fn sorts_and_options_are_validated() {
        let e = |v: Value| FindQuery::parse(v.as_object().unwrap()).unwrap_err().error;
        assert_eq!(
            e(json!({"selector": {}, "sort": [{"a": "asc"}, {"b": "desc"}]})),
            "unsupported_mixed_sort"
        );
        assert_eq!(
            e(json!({"selector": {}, "sort": [{"a": "up"}]})),
            "invalid_sort_dir"
        );
        assert_eq!(
            e(json!({"selector": {}, "sort": {"a": "asc"}})),
            "invalid_sort_json"
        );
        assert_eq!(e(json!({"sort": []})), "missing_required_key");
        assert_eq!(
            e(json!({"selector": {}, "limit": -1})),
            "invalid_non_neg_integer"
        );
        assert_eq!(e(json!({"selector": {}, "fields": "a"})), "invalid_fields");
        assert_eq!(
            e(json!({"selector": {}, "bookmark": "!!"})),
            "invalid_bookmark"
        );
        assert_eq!(e(json!({"selector": {}, "foo": 1})), "invalid_key");
        let b = Bookmark {
            key: vec![1, 255, 0],
            id: "x/y".into(),
        };
        assert_eq!(Bookmark::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn projection_keeps_nesting() {
        let query = q(json!({"selector": {}, "fields": ["a.b", "c", "missing"]}));
        assert_eq!(
            query.project(json!({"a": {"b": 1, "x": 2}, "c": [3], "d": 4})),
            json!({"a": {"b": 1}, "c": [3]})
        );
    }

    #[test]
    fn design_doc_round_trip() {
        let body = json!({"index": {"fields": [{"n": "desc"}], "partial_filter_selector": {"t": 1}}, "ddoc": "d", "name": "i"});
        let new = NewIndex::parse(body.as_object().unwrap()).unwrap().index;
        assert_eq!(new.ddoc, "_design/d");
        let ddoc = json!({"language": "query", "views": {"i": new.view_json()}});
        let back = JsonIndex::from_design_doc("_design/d", ddoc.as_object().unwrap(), false);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].signature(), new.signature());
        assert_eq!(
            back[0].to_json()["def"],
            json!({"fields": [{"n": "desc"}], "partial_filter_selector": {"t": 1}})
        );
        let text = json!({"index": {"fields": ["a"]}, "type": "text"});
        let parsed = NewTextIndex::parse(text.as_object().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed.def.fields,
            Some(vec![("a".to_string(), "string".to_string())])
        );
        let nouveau = json!({"index": {"fields": ["a"]}, "type": "nouveau"});
        assert_eq!(
            NewIndex::parse(nouveau.as_object().unwrap())
                .unwrap_err()
                .status,
            503
        );
    }
}
