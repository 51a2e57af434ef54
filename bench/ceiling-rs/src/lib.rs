//! The platform ceiling as a workers-rs Worker: the same entry Worker and
//! one-statement Durable Object as `bench/ceiling/worker.js`, through
//! `worker`'s own types (its `Request`, `Response`, `SqlStorage`). Settee
//! pays this layer on every request, so the benchmark reports Settee's
//! single-document rates against it as well as against the JavaScript
//! ceiling: the difference between the two ceilings is the runtime
//! layer's, the rest is Settee's.

#[cfg(target_arch = "wasm32")]
mod wasm {
    use worker::*;

    #[durable_object]
    pub struct Kv {
        sql: SqlStorage,
    }

    impl DurableObject for Kv {
        fn new(state: State, _env: Env) -> Self {
            let sql = state.storage().sql();
            sql.exec(
                "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
                None,
            )
            .expect("the table can be created");
            Kv { sql }
        }

        async fn fetch(&self, mut req: Request) -> Result<Response> {
            let path = req.path();
            let Some(key) = path.strip_prefix("/k/").filter(|k| !k.is_empty()) else {
                return Response::error("not found\n", 404);
            };
            let key = key.to_string();
            match req.method() {
                Method::Get => {
                    let rows: Vec<Vec<SqlStorageValue>> = self
                        .sql
                        .exec("SELECT v FROM kv WHERE k = ?", vec![key.into()])?
                        .raw()
                        .collect::<Result<_>>()?;
                    match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
                        Some(SqlStorageValue::String(v)) => {
                            let headers = Headers::new();
                            headers.set("content-type", "application/json")?;
                            Ok(Response::ok(v)?.with_headers(headers))
                        }
                        _ => Response::error("not found\n", 404),
                    }
                }
                Method::Put => {
                    let value = req.text().await?;
                    self.sql.exec(
                        "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                        vec![key.into(), value.into()],
                    )?;
                    let headers = Headers::new();
                    headers.set("content-type", "application/json")?;
                    Ok(Response::ok("{\"ok\":true}")?
                        .with_status(201)
                        .with_headers(headers))
                }
                _ => Response::error("method not allowed\n", 405),
            }
        }
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        env.durable_object("KV")?
            .get_by_name("bench")?
            .fetch_with_request(req)
            .await
    }
}
