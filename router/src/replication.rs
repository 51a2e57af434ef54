//! `POST /_replicate`, `/_scheduler/jobs`, `/_scheduler/docs` and the
//! replication rows of `_active_tasks`: the router's side of the
//! replicator actors, reached by [`ReplicatorCall`]s.

use crate::cluster::Cluster;
use replicator_actor::registry::{active_tasks as task_rows, jobs_view, REPLICATOR_DB};
use serde_json::{json, Value};
use shared::actor_call::{ReplicatorCall, REGISTRY_NAME};
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::replication::id::job_id;
use shared::replication::params::ReplicateRequest;
use shared::user::UserCtx;

/// How long one wait on a job lasts before the router asks again (a
/// one-shot `_replicate` waits for as many as it takes).
const WAIT_MS: u64 = 20_000;

/// `POST /_replicate`: a one-shot replication answers when it is done,
/// with CouchDB's body; `continuous` answers at once (202 with
/// `_local_id`); `cancel` stops the job.
pub async fn replicate(c: &impl Cluster, req: &Request, user: &UserCtx) -> CouchResult<Response> {
    let r = ReplicateRequest::parse(&req.json_body()?)?;
    let uuid = c.server_uuid().await?;
    let id = match (&r.replication_id, r.cancel) {
        (Some(id), true) => id.clone(),
        _ => job_id(&uuid, &r.params),
    };
    if r.cancel {
        let v = c.replicator(&id, ReplicatorCall::JobStop).await?;
        if v["existed"] != true {
            return Err(CouchError::not_found(format!("Replication {id} not found")));
        }
        return Ok(Response::json(200, &json!({"ok": true, "_local_id": id})));
    }
    let body = json!({
        "id": id,
        "params": r.params,
        "origin": {"kind": "replicate"},
        "user": user,
    });
    c.replicator(&id, ReplicatorCall::JobStart(body)).await?;
    if r.params.continuous {
        return Ok(Response::json(202, &json!({"ok": true, "_local_id": id})));
    }
    loop {
        let v = c
            .replicator(&id, ReplicatorCall::JobWait { ms: WAIT_MS })
            .await?;
        match v["state"].as_str() {
            Some("completed") => return Ok(Response::json(200, &v["result"])),
            Some("failed") => {
                let e = &v["error"];
                return Err(CouchError::new(
                    e["status"].as_u64().unwrap_or(500) as u16,
                    e["error"].as_str().unwrap_or("replication_failed"),
                    e["reason"].as_str().unwrap_or(""),
                ));
            }
            Some("stopped") => {
                return Err(CouchError::new(
                    404,
                    "not_found",
                    format!("Replication {id} was cancelled"),
                ))
            }
            _ => continue,
        }
    }
}

/// `_active_tasks`: one row per running replication.
pub async fn active_tasks(c: &impl Cluster) -> CouchResult<Value> {
    let jobs = c.replicator(REGISTRY_NAME, ReplicatorCall::Jobs).await?;
    Ok(Value::from(task_rows(
        jobs.as_array().map_or(&[][..], |v| v),
    )))
}

/// `/_scheduler/jobs[/{id}]` and `/_scheduler/docs[/_replicator[/{docid}]]`.
pub async fn scheduler(c: &impl Cluster, rest: &[String]) -> CouchResult<Response> {
    let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["jobs"] => {
            let jobs = c.replicator(REGISTRY_NAME, ReplicatorCall::Jobs).await?;
            Ok(Response::json(
                200,
                &jobs_view(jobs.as_array().map_or(&[][..], |v| v)),
            ))
        }
        ["jobs", id] => {
            let jobs = c.replicator(REGISTRY_NAME, ReplicatorCall::Jobs).await?;
            let view = jobs_view(jobs.as_array().map_or(&[][..], |v| v));
            view["jobs"]
                .as_array()
                .and_then(|a| a.iter().find(|j| j["id"] == *id))
                .map(|j| Response::json(200, j))
                .ok_or_else(|| CouchError::not_found("unknown"))
        }
        ["docs"] | ["docs", REPLICATOR_DB] => {
            let docs = c.replicator(REGISTRY_NAME, ReplicatorCall::Docs).await?;
            let n = docs.as_array().map_or(0, Vec::len);
            Ok(Response::json(
                200,
                &json!({"total_rows": n, "offset": 0, "docs": docs}),
            ))
        }
        ["docs", REPLICATOR_DB, doc_id] => {
            let docs = c.replicator(REGISTRY_NAME, ReplicatorCall::Docs).await?;
            docs.as_array()
                .and_then(|a| a.iter().find(|d| d["doc_id"] == *doc_id))
                .map(|d| Response::json(200, d))
                .ok_or_else(|| CouchError::not_found("unknown"))
        }
        ["docs", db, ..] => Err(CouchError::not_found(format!(
            "Database {db} is not a replicator database"
        ))),
        _ => Err(CouchError::not_found("missing")),
    }
}
