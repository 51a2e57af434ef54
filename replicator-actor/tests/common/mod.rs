//! A database served by the engine (db-actor's HTTP surface over
//! rusqlite), as the replicator sees one.

use db_actor::api;
use db_actor::reply::Reply;
use db_actor::Database;
use serde_json::{json, Value};
use shared::config::Limits;
use shared::http::{encode_segment, Request};
use shared::replication::peer::{PeerRequest, PeerResponse, RepError, Transport};
use shared::sqlite::SqliteSql;
use shared::user::UserCtx;
use shared::users::UsersConfig;
use std::cell::Cell;

/// A database served by the engine, as the replicator sees one.
pub struct Db {
    pub sql: SqliteSql,
    pub name: String,
    pub uuid: String,
    /// Answer `_bulk_get` with 404, as servers before CouchDB 2 did.
    pub no_bulk_get: bool,
    pub requests: Cell<u64>,
}

impl Db {
    pub fn new(name: &str, uuid: &str) -> Db {
        let db = Db {
            sql: SqliteSql::memory(),
            name: name.into(),
            uuid: uuid.into(),
            no_bulk_get: false,
            requests: Cell::new(0),
        };
        Database::new(&db.sql, Limits::default())
            .store
            .init_schema()
            .unwrap();
        db.http("PUT", "", "", None);
        db
    }

    pub fn http(&self, method: &str, path: &str, query: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.raw(
            method,
            path,
            query,
            body.map(|b| b.to_string().into_bytes()),
        );
        (r.status, r.json().unwrap_or(Value::Null))
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<Vec<u8>>,
    ) -> PeerResponse {
        let full = if path.is_empty() {
            format!("/{}", encode_segment(&self.name))
        } else {
            format!("/{}/{path}", encode_segment(&self.name))
        };
        let mut req = Request::new(method, &full, query)
            .with_header("content-type", "application/json")
            .with_header("accept", "application/json");
        req.body = body.unwrap_or_default();
        req.user = UserCtx::admin("admin");
        let db = Database::new(&self.sql, Limits::default());
        let out = api::handle(
            &db,
            &req,
            &|| shared::uuids::random_hex(),
            UsersConfig::default(),
        );
        let resp = match out.reply {
            Reply::Done(r) => r,
            Reply::Wait { query, since } => db_actor::feed::page_response(&db, &query, since),
            other => panic!("unexpected reply {other:?}"),
        };
        PeerResponse {
            status: resp.status,
            body: resp.body,
        }
    }

    pub fn put(&self, id: &str, body: Value) -> String {
        let (s, v) = self.http("PUT", &encode_segment(id), "", Some(body));
        assert_eq!(s, 201, "{v}");
        v["rev"].as_str().unwrap().to_string()
    }

    pub fn doc_count(&self) -> u64 {
        self.http("GET", "", "", None).1["doc_count"]
            .as_u64()
            .unwrap()
    }

    /// Every document's full rev tree: leaves with their histories.
    pub fn trees(&self) -> Vec<(String, Value)> {
        let (_, all) = self.http("GET", "_all_docs", "", None);
        let ids: Vec<String> = all["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.into_iter()
            .map(|id| {
                let (_, mut leaves) =
                    self.http("GET", &encode_segment(&id), "open_revs=all&revs=true", None);
                let arr = leaves.as_array_mut().unwrap();
                arr.sort_by_key(|l| l["ok"]["_rev"].as_str().unwrap_or_default().to_string());
                (id, leaves)
            })
            .collect()
    }
}

impl Transport for &Db {
    async fn send(&self, req: PeerRequest) -> Result<PeerResponse, RepError> {
        self.requests.set(self.requests.get() + 1);
        if req.root {
            return Ok(PeerResponse {
                status: 200,
                body: json!({"couchdb": "Welcome", "uuid": self.uuid})
                    .to_string()
                    .into_bytes(),
            });
        }
        if self.no_bulk_get && req.path == "_bulk_get" {
            return Ok(PeerResponse {
                status: 404,
                body: br#"{"error":"not_found","reason":"missing"}"#.to_vec(),
            });
        }
        let q = req.query_string();
        Ok(self.raw(req.method, &req.path, q.trim_start_matches('?'), req.body))
    }
}

/// `_replicator` with a one-shot document `once` from `a` (five
/// documents) to an empty `b`, all on server `s1`.
pub fn one_shot_fixture() -> (Db, Db, Db) {
    let rep = Db::new("_replicator", "s1");
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s1");
    for i in 0..5 {
        a.put(&format!("d{i}"), json!({"i": i}));
    }
    rep.put("once", json!({"source": "a", "target": "b"}));
    (rep, a, b)
}
