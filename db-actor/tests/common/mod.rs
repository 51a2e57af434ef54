//! A database actor over in-memory SQLite, driven like the Worker drives it.
#![allow(dead_code)]

use db_actor::api;
use db_actor::bucket_sync::{Bucket, BucketSync};
use db_actor::database::ActorCache;
use db_actor::feed;
use db_actor::reply::Reply;
use db_actor::Database;
use serde_json::Value;
use shared::config::Limits;
use shared::http::{Request, Response};
use shared::sqlite::SqliteSql;
use shared::user::UserCtx;
use shared::users::UsersConfig;
use std::cell::RefCell;
use std::collections::BTreeMap;

fn users_config() -> UsersConfig {
    UsersConfig {
        iterations: 5,
        allow_signup: true,
    }
}

pub struct Db {
    pub sql: SqliteSql,
    pub limits: Limits,
    /// Set to keep large attachment contents in a bucket.
    pub remote: Option<BucketSync<MemoryBucket>>,
    /// Kept between requests, as the actor keeps it.
    pub cache: ActorCache,
}

impl Db {
    pub fn new() -> Self {
        Self::named("db")
    }

    /// A fresh database created (by the admin) under `name`.
    pub fn named(name: &str) -> Self {
        Self::created_by(&format!("/{name}"))
    }

    /// A fresh database created by `PUT url` (`/name?partitioned=true`).
    pub fn created_by(url: &str) -> Self {
        let db = Db::empty();
        assert_eq!(db.call("PUT", url, None).status, 201, "PUT {url}");
        db
    }

    /// Storage with no database in it yet.
    pub fn empty() -> Self {
        let db = Db {
            sql: SqliteSql::memory(),
            limits: Limits::default(),
            remote: None,
            cache: ActorCache::default(),
        };
        db.engine().store.init_schema().unwrap();
        db
    }

    /// Status and JSON of a request as `user`.
    pub fn as_user(
        &self,
        user: &UserCtx,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (path, qs) = url.split_once('?').unwrap_or((url, ""));
        let mut req =
            Request::new(method, path, qs).with_header("content-type", "application/json");
        if let Some(b) = body {
            req = req.with_body(b.to_string());
        }
        let r = self.request_as(user, req);
        (r.status, r.json_body())
    }

    pub fn engine(&self) -> Database<'_> {
        let db = Database::new(&self.sql, self.limits).with_cache(&self.cache);
        match &self.remote {
            Some(r) => db.with_remote(&r.remote),
            None => db,
        }
    }

    /// A request as the server admin.
    pub fn request(&self, req: Request) -> Response {
        self.request_as(&UserCtx::admin("admin"), req)
    }

    /// A request as `user`.
    pub fn request_as(&self, user: &UserCtx, req: Request) -> Response {
        let req = Request {
            user: user.clone(),
            ..req
        };
        let db = self.engine();
        match api::handle(&db, &req, &|| "t".to_string(), users_config()).reply {
            Reply::Done(r) => r,
            Reply::Wait { query, since } => feed::page_response(&db, &query, since),
            Reply::Feed {
                framing,
                query,
                since,
            } => feed::now(&db, framing, &query, since),
            Reply::Subscribe { .. } => Response::empty(101),
        }
    }

    pub fn call(&self, method: &str, url: &str, body: Option<Value>) -> Response {
        let (path, qs) = url.split_once('?').unwrap_or((url, ""));
        let mut req =
            Request::new(method, path, qs).with_header("content-type", "application/json");
        if let Some(b) = body {
            req = req.with_body(b.to_string());
        }
        self.request(req)
    }

    pub fn json(&self, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.call(method, url, body);
        (r.status, r.json_body())
    }

    pub fn put(&self, id: &str, body: Value) -> String {
        let (s, v) = self.json("PUT", &format!("/db/{id}"), Some(body));
        assert_eq!(s, 201, "{v}");
        v["rev"].as_str().unwrap().to_string()
    }
}

/// The ids of a `_find` answer's documents, in order.
pub fn found_ids(v: &Value) -> Vec<String> {
    v["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_string())
        .collect()
}

/// The document ids of a `_changes` answer's rows, in order.
pub fn change_ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A bucket in memory, as the binding's R2 bucket behaves, with a page
/// size so listing pages are exercised.
#[derive(Default)]
pub struct MemoryBucket {
    pub objects: RefCell<BTreeMap<String, Vec<u8>>>,
}

const PAGE: usize = 2;

impl Bucket for MemoryBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.objects.borrow().get(key).cloned())
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), String> {
        self.objects.borrow_mut().insert(key.to_string(), data);
        Ok(())
    }

    async fn delete(&self, keys: Vec<String>) -> Result<(), String> {
        let mut objects = self.objects.borrow_mut();
        for k in keys {
            objects.remove(&k);
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<String>, bool), String> {
        let objects = self.objects.borrow();
        let keys: Vec<String> = objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let more = keys.len() > PAGE;
        Ok((keys.into_iter().take(PAGE).collect(), more))
    }
}
