//! The catalog: a single, strongly consistent actor that knows which
//! databases exist (for `_all_dbs` and `_dbs_info`) and holds the server's
//! stable uuid. Database actors report creations and deletions to it.
//!
//! Its HTTP interface is internal (reached only through its binding):
//! `GET /list?startkey&endkey&limit&skip&descending&inclusive_end`,
//! `POST /add` and `POST /remove` with `{"name"}`, `GET /uuid`.

use serde_json::{json, Value};
use shared::all_docs::{AllDocsQuery, KeyRange};
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::sql::Sql;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS dbs (name TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS catalog_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
];

pub struct Catalog<'a> {
    sql: &'a dyn Sql,
}

impl<'a> Catalog<'a> {
    pub fn new(sql: &'a dyn Sql) -> CouchResult<Self> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        Ok(Catalog { sql })
    }

    pub fn add(&self, name: &str) -> CouchResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO dbs (name) VALUES (?)",
            &[name.into()],
        )?;
        Ok(())
    }

    pub fn remove(&self, name: &str) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM dbs WHERE name = ?", &[name.into()])?;
        Ok(())
    }

    /// Database names in order, with `_all_dbs`' range options.
    pub fn list(&self, q: &AllDocsQuery) -> CouchResult<Vec<String>> {
        let (cond, mut params) = KeyRange::from_query(q).sql_condition("name");
        let order = if q.descending { "DESC" } else { "ASC" };
        params.push(q.limit.unwrap_or(u64::MAX).into());
        params.push(q.skip.into());
        let sql = format!(
            "SELECT name FROM dbs WHERE 1 = 1{cond} ORDER BY name {order} LIMIT ? OFFSET ?"
        );
        Ok(self
            .sql
            .query(&sql, &params)?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .collect())
    }

    /// The server's uuid, created on first use and stable thereafter
    /// (PouchDB keys replication checkpoints on it).
    pub fn server_uuid(&self) -> CouchResult<String> {
        if let Some(mut r) = self
            .sql
            .query_row("SELECT v FROM catalog_meta WHERE k = 'uuid'", &[])?
        {
            return Ok(r.swap_remove(0).into_string().unwrap_or_default());
        }
        let uuid = uuid_hex();
        self.sql.exec(
            "INSERT INTO catalog_meta (k, v) VALUES ('uuid', ?)",
            &[uuid.as_str().into()],
        )?;
        Ok(uuid)
    }

    /// Serves the catalog's internal HTTP interface.
    pub fn handle(&self, req: &Request) -> Response {
        shared::http::respond(self.route(req))
    }

    fn route(&self, req: &Request) -> CouchResult<Response> {
        let path: Vec<&str> = req.path.iter().map(String::as_str).collect();
        match (req.method.as_str(), path.as_slice()) {
            ("GET", ["list"]) => {
                let q = AllDocsQuery::from_request(req, None)?;
                Ok(Response::json(200, &self.list(&q)?))
            }
            ("POST", [op @ ("add" | "remove")]) => {
                let body = req.json_body()?;
                let name = body
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| CouchError::bad_request("name required"))?;
                if *op == "add" {
                    self.add(name)?;
                } else {
                    self.remove(name)?;
                }
                Ok(Response::ok())
            }
            ("GET", ["uuid"]) => Ok(Response::json(200, &json!({"uuid": self.server_uuid()?}))),
            _ => Err(CouchError::not_found("no such catalog operation")),
        }
    }
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sqlite::SqliteSql;

    #[test]
    fn lists_with_ranges_and_keeps_uuid() {
        let sql = SqliteSql::memory();
        let c = Catalog::new(&sql).unwrap();
        for n in ["b", "a", "d", "c"] {
            c.add(n).unwrap();
        }
        c.add("a").unwrap();
        c.remove("d").unwrap();
        let list = |qs: &str| {
            let r = c.handle(&Request::new("GET", "/list", qs));
            assert_eq!(r.status, 200);
            r.json_body()
        };
        assert_eq!(list(""), json!(["a", "b", "c"]));
        assert_eq!(list("descending=true&limit=2"), json!(["c", "b"]));
        assert_eq!(list("startkey=%22b%22"), json!(["b", "c"]));
        assert_eq!(list("endkey=%22b%22&inclusive_end=false"), json!(["a"]));
        assert_eq!(list("skip=1"), json!(["b", "c"]));
        let u = c.server_uuid().unwrap();
        assert_eq!(u.len(), 32);
        assert_eq!(c.server_uuid().unwrap(), u);
        let r = c.handle(&Request::new("POST", "/add", "").with_body("{}"));
        assert_eq!(r.status, 400);
    }
}
