//! The `_replicator` document processor (CouchDB's
//! `couch_replicator_doc_processor`): the registry's alarm reads the
//! database's changes from its cursor, lets the [`Registry`] decide what
//! each means, and carries out the [`Action`]s — starting a job as the
//! document's owner, stopping one, recording a failure in the document.
//! A completed job records its state in its document through
//! [`record_completion`].
//!
//! States are written as [`docs::system_user`]; a write that meets a newer
//! revision (409) or a deleted document (404) is not an error: the newer
//! revision is a change of its own.

use crate::job::{JobRecord, Origin};
use crate::registry::{Action, Registry, REPLICATOR_DB};
use crate::runtime::Runtime;
use serde_json::{json, Value};
use shared::actor_call::ReplicatorCall;
use shared::error::CouchResult;
use shared::http::encode_segment;
use shared::replication::docs;
use shared::replication::params::Endpoint;
use shared::replication::peer::{PeerRequest, RepError, Transport};
use shared::user::UserCtx;
use shared::users::{USERS_DB, USER_PREFIX};

/// Changes read per request.
const PAGE: usize = 100;

fn local(db: &str) -> Endpoint {
    Endpoint::Local { db: db.into() }
}

/// Reads `_replicator` changes since the registry's cursor and acts on
/// them, page by page, moving the cursor after each page.
pub async fn process(registry: &Registry<'_>, rt: &impl Runtime) -> CouchResult<()> {
    let uuid = rt.server_uuid().await?;
    let end = local(REPLICATOR_DB);
    let db = rt.peer(&end, &UserCtx::admin(REPLICATOR_DB));
    loop {
        let req = PeerRequest::new("GET", "_changes")
            .query("since", registry.since()?)
            .query("include_docs", "true")
            .query("limit", PAGE.to_string());
        let r = db.send(req).await.map_err(|e| e.to_couch())?;
        if r.status == 404 {
            // `_replicator` was deleted: its documents' jobs stop, as in
            // CouchDB, and a new one is read from its start.
            for id in registry.doc_ids()? {
                let gone = json!({"id": id, "deleted": true});
                for a in registry.apply_change(&gone, &uuid, rt.now())? {
                    act(registry, rt, a).await?;
                }
            }
            return registry.set_since("0");
        }
        let body = r.json().map_err(|e| e.to_couch())?;
        let rows = body["results"].as_array().cloned().unwrap_or_default();
        for row in &rows {
            for a in registry.apply_change(row, &uuid, rt.now())? {
                act(registry, rt, a).await?;
            }
        }
        let last = match &body["last_seq"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        registry.set_since(&last)?;
        if rows.len() < PAGE {
            return Ok(());
        }
    }
}

async fn act(registry: &Registry<'_>, rt: &impl Runtime, a: Action) -> CouchResult<()> {
    match a {
        Action::Stop(id) => {
            rt.call(&id, &ReplicatorCall::JobStop).await?;
            registry.remove(&id)?;
        }
        Action::Start {
            job_id,
            doc_id,
            params,
            owner,
        } => {
            let user = owner_ctx(rt, owner.as_deref()).await?;
            let body = json!({
                "id": job_id,
                "params": params,
                "origin": Origin::Doc { doc_id },
                "user": user,
            });
            rt.call(&job_id, &ReplicatorCall::JobStart(body)).await?;
        }
        // Best effort, as in CouchDB.
        Action::Record { doc_id, body } => {
            if let Err(e) = put_doc(rt, &doc_id, &body).await {
                rt.log(&format!("recording the state of _replicator/{doc_id}: {e}"));
            }
        }
    }
    Ok(())
}

/// Whom a `_replicator` document's job acts as on local databases: its
/// owner with the roles of their `_users` document, so a user cannot
/// replicate what they could not read. The server admin, and documents
/// from before owners were kept, act as admin.
async fn owner_ctx(rt: &impl Runtime, owner: Option<&str>) -> CouchResult<UserCtx> {
    let admin = rt.admin_name();
    let Some(name) = owner.filter(|o| Some(*o) != admin.as_deref()) else {
        return Ok(UserCtx::admin(owner.unwrap_or(REPLICATOR_DB)));
    };
    let end = local(USERS_DB);
    let users = rt.peer(&end, &UserCtx::admin(REPLICATOR_DB));
    let id = format!("{USER_PREFIX}{name}");
    let r = users
        .send(PeerRequest::new("GET", encode_segment(&id)))
        .await
        .map_err(|e| e.to_couch())?;
    let roles = match r.status {
        200 => UserCtx::roles_from(r.json().map_err(|e| e.to_couch())?.get("roles")),
        _ => vec![],
    };
    Ok(UserCtx {
        name: Some(name.to_string()),
        roles,
    })
}

/// Writes a `_replicator` document (its body carries the `_rev` it
/// replaces) as the system and answers the status.
async fn put_doc(rt: &impl Runtime, doc_id: &str, body: &Value) -> Result<u16, RepError> {
    let end = local(REPLICATOR_DB);
    let req = PeerRequest::new("PUT", encode_segment(doc_id)).json(body);
    let r = rt.peer(&end, &docs::system_user()).send(req).await?;
    if r.status >= 400 && r.status != 404 && r.status != 409 {
        rt.log(&format!(
            "recording the state of _replicator/{doc_id}: HTTP {}",
            r.status
        ));
    }
    Ok(r.status)
}

/// Writes a completed document job's state into its document, as
/// CouchDB 3 does, retrying on the newer revision after a conflict.
pub async fn record_completion(rt: &impl Runtime, rec: &JobRecord) {
    let Origin::Doc { doc_id } = &rec.origin else {
        return;
    };
    let end = local(REPLICATOR_DB);
    for _ in 0..5 {
        let get = PeerRequest::new("GET", encode_segment(doc_id));
        let doc = match rt.peer(&end, &docs::system_user()).send(get).await {
            Ok(r) if r.status == 200 => r.json().ok(),
            _ => None,
        };
        let Some(body) = doc.as_ref().and_then(Value::as_object) else {
            return;
        };
        let Some(body) = rec.doc_update(body, rt.now()) else {
            return;
        };
        match put_doc(rt, doc_id, &Value::Object(body)).await {
            Ok(409) => continue,
            Ok(_) => return,
            Err(e) => {
                rt.log(&format!(
                    "recording job {} in _replicator/{doc_id}: {e}",
                    rec.id
                ));
                return;
            }
        }
    }
}
