//! The two names of a replication.
//!
//! **The job id** ([`job_id`]) names the job (the replicator actor that
//! runs it, `_scheduler/jobs`, `_local_id`, `cancel`). CouchDB's version 4
//! id is the hex MD5 of an Erlang term holding the replicating server's
//! uuid, the source and target without credentials, and the filter; options
//! that change the job but not the data flow are appended as
//! `+continuous` / `+create_target`. Settee hashes the same inputs as
//! compact JSON instead of Erlang's term format:
//!
//! ```text
//! md5_hex(JSON [4, server_uuid, endpoint(source), endpoint(target), filter])
//!   endpoint = {"db": name}                                  (local)
//!            | {"url": url, "headers": {name: value, ...}}   (remote; sorted,
//!                                                            no Authorization)
//!   filter   = null | {"doc_ids": [sorted]} | {"selector": S}
//!            | {"filter": "ddoc/name", "query_params": {sorted}}
//! ```
//!
//! Credentials are left out (as in CouchDB's v4) so a password change does
//! not orphan the job, and the server uuid is in so two servers replicating
//! the same pair run distinct jobs. No other implementation can reproduce
//! CouchDB's own id anyway: it depends on the CouchDB node's uuid.
//!
//! **The checkpoint id** ([`checkpoint_id`]) names the `_local` document
//! that holds the checkpoint on both ends. It is computed as PouchDB does
//! (`generateReplicationId`): base64 MD5 of the two endpoints' ids (server
//! uuid + URL-encoded database name) followed by the filter's parameters,
//! with `/` → `.` and `+` → `_`. Because it depends only on the two
//! databases, a replication Settee ran is continued by PouchDB (or the
//! reverse) from the shared checkpoint instead of starting over.

use super::params::{Endpoint, RepFilter, RepParams};
use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

/// The checkpoint format version written as `replication_id_version`.
pub const REP_ID_VERSION: u64 = 4;

/// `v` with every object's members in key order, so equal values encode
/// alike.
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        v => v.clone(),
    }
}

fn endpoint_term(e: &Endpoint) -> Value {
    match e {
        Endpoint::Local { db } => json!({ "db": db }),
        Endpoint::Remote { url, headers } => {
            let h: Map<String, Value> = headers
                .iter()
                .filter(|(k, _)| k != "authorization")
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({"url": url, "headers": sorted(&Value::Object(h))})
        }
    }
}

fn filter_term(f: &RepFilter) -> Value {
    match f {
        RepFilter::None => Value::Null,
        RepFilter::DocIds { ids } => {
            let mut ids = ids.clone();
            ids.sort();
            json!({ "doc_ids": ids })
        }
        RepFilter::Selector { selector } => json!({ "selector": sorted(selector) }),
        RepFilter::Named { name, query_params } => {
            json!({"filter": name, "query_params": sorted(query_params)})
        }
    }
}

/// The job id: `HEX` plus `+continuous` and `+create_target` as set.
pub fn job_id(server_uuid: &str, p: &RepParams) -> String {
    let term = json!([
        REP_ID_VERSION,
        server_uuid,
        endpoint_term(&p.source),
        endpoint_term(&p.target),
        filter_term(&p.filter)
    ]);
    let digest = Md5::digest(term.to_string().as_bytes());
    let mut id: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if p.continuous {
        id.push_str("+continuous");
    }
    if p.create_target {
        id.push_str("+create_target");
    }
    id
}

/// The id PouchDB gives a database: its server's uuid followed by the
/// URL-encoded name (PouchDB's HTTP adapter `id()`).
pub fn pouch_db_id(server_uuid: &str, e: &Endpoint) -> String {
    format!("{server_uuid}{}", e.pouch_db_segment())
}

/// Orders strings as JavaScript's `<` does (UTF-16 code units), which is
/// how PouchDB's collation sorts `doc_ids` before hashing them.
fn js_string_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `_local/...`: the checkpoint document's id, as PouchDB computes it from
/// the two database ids (see the module docs).
pub fn checkpoint_id(source_id: &str, target_id: &str, filter: &RepFilter) -> String {
    let mut data = format!("{source_id}{target_id}");
    match filter {
        RepFilter::None => {}
        RepFilter::Named { name, query_params } => {
            data.push_str(name);
            data.push_str(&sorted(query_params).to_string());
        }
        RepFilter::DocIds { ids } => {
            let mut ids = ids.clone();
            ids.sort_by(|a, b| js_string_order(a, b));
            data.push_str(&ids.join(","));
        }
        RepFilter::Selector { selector } => data.push_str(&selector.to_string()),
    }
    let digest = Md5::digest(data.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("_local/{}", b64.replace('/', ".").replace('+', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> RepParams {
        RepParams::parse(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn job_ids_ignore_credentials_and_tag_options() {
        let a = params(json!({"source": "http://u:p@h/db", "target": "t"}));
        let b = params(json!({"source": "http://u:other@h/db", "target": "t"}));
        assert_eq!(job_id("s", &a), job_id("s", &b));
        assert_ne!(job_id("s", &a), job_id("other-server", &a));
        let c = params(json!({"source": "http://h/db", "target": "t",
                              "continuous": true, "create_target": true}));
        let id = job_id("s", &c);
        assert!(id.ends_with("+continuous+create_target"), "{id}");
        assert_eq!(id.len(), 32 + "+continuous+create_target".len());
        let d = params(json!({"source": "http://h/db", "target": "t", "doc_ids": ["b", "a"]}));
        let e = params(json!({"source": "http://h/db", "target": "t", "doc_ids": ["a", "b"]}));
        assert_eq!(job_id("s", &d), job_id("s", &e));
        assert_ne!(job_id("s", &d), job_id("s", &a));
    }

    #[test]
    fn checkpoint_id_is_pouchdbs() {
        // PouchDB 9: md5 base64 of "uuid1db1uuid2db2", `/`→`.`, `+`→`_`.
        let src = pouch_db_id("uuid1", &Endpoint::Local { db: "db1".into() });
        assert_eq!(src, "uuid1db1");
        let id = checkpoint_id("uuid1db1", "uuid2db2", &RepFilter::None);
        let digest = Md5::digest(b"uuid1db1uuid2db2");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(
            id,
            format!("_local/{}", b64.replace('/', ".").replace('+', "_"))
        );
        let ids = RepFilter::DocIds {
            ids: vec!["b".into(), "a".into()],
        };
        let digest = Md5::digest(b"xya,b");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(
            checkpoint_id("x", "y", &ids),
            format!("_local/{}", b64.replace('/', ".").replace('+', "_"))
        );
    }
}
