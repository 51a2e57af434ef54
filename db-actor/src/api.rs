//! The HTTP surface of one database: `/{db}/...` requests in, CouchDB
//! responses out. Runtime-neutral, so every endpoint is tested natively;
//! the Worker binding only adds waiting (long-poll) and notifications.

use crate::access::Access;
use crate::all_docs::Index;
use crate::database::Database;
use crate::feed;
use crate::reply::{DbEvent, Outcome, Reply};
use serde_json::{json, Value};
use shared::all_docs::AllDocsQuery;
use shared::changes::{ChangesQuery, Feed};
use shared::doc::{self, IncomingDoc, LOCAL_PREFIX};
use shared::doc_read::{self, request_rev, OpenRev, ReadOpts};
use shared::error::{CouchError, CouchResult};
use shared::http::{encode_segment, method_not_allowed, Request, Response};
use shared::node_config::NODE_NAME;
use shared::partition;
use shared::replication::REPLICATOR_DB;
use shared::rev::Rev;
use shared::search::index_def::Kind;
use shared::search::request::SearchQuery;
use shared::security::check_server_admin;
use shared::users::{UsersConfig, USERS_DB};
use shared::uuids;
use shared::view::ViewQuery;

/// Handles a request whose first path segment is this database's name.
/// `new_instance` supplies the random tag of a database being created;
/// `users` configures the `_users` database's rules.
pub fn handle(
    db: &Database,
    req: &Request,
    new_instance: &dyn Fn() -> String,
    users: UsersConfig,
) -> Outcome {
    let mut event = None;
    let result = ensure_system_db(db, req, new_instance, &mut event)
        .and_then(|_| route(db, req, new_instance, users));
    match result {
        Ok(mut o) => {
            o.event = o.event.or(event);
            o
        }
        Err(e) => Outcome {
            reply: Reply::Done(Response::error(&e)),
            event,
        },
    }
}

/// `_users` and `_replicator` exist from the first request that needs
/// them, as CouchDB creates them at start-up.
fn ensure_system_db(
    db: &Database,
    req: &Request,
    new_instance: &dyn Fn() -> String,
    event: &mut Option<DbEvent>,
) -> CouchResult<()> {
    let Some(name) = req
        .path
        .first()
        .map(String::as_str)
        .filter(|n| [USERS_DB, REPLICATOR_DB].contains(n))
    else {
        return Ok(());
    };
    let managing_db = req.path.len() == 1 && matches!(req.method.as_str(), "PUT" | "DELETE");
    // The replicator registry's own reads must see a deleted `_replicator`
    // as deleted (to stop its jobs), not bring it back.
    let registry = req.user.name.as_deref() == Some(REPLICATOR_DB);
    if !managing_db && !registry && !db.exists()? {
        db.create(name, &new_instance())?;
        *event = Some(DbEvent::Created);
    }
    Ok(())
}

fn updated(r: Response) -> CouchResult<Outcome> {
    let event = (r.status < 300).then_some(DbEvent::Updated);
    Ok(Outcome {
        reply: Reply::Done(r),
        event,
    })
}

fn done(r: Response) -> CouchResult<Outcome> {
    Ok(Outcome::done(r))
}

fn route(
    db: &Database,
    req: &Request,
    new_instance: &dyn Fn() -> String,
    users: UsersConfig,
) -> CouchResult<Outcome> {
    let name = req.path.first().map(String::as_str).unwrap_or_default();
    let rest: Vec<&str> = req.path.iter().skip(1).map(String::as_str).collect();
    let m = req.method.as_str();
    if let Some(i) = req.invalid_segment {
        return Err(doc::invalid_utf8_segment(&req.path, i));
    }
    // Creating and deleting databases is for server admins, and the only
    // thing that may happen to a database that does not exist.
    if rest.is_empty() && matches!(m, "PUT" | "DELETE") {
        check_server_admin(&req.user)?;
        return if m == "PUT" {
            shared::db_name::validate(name)?;
            let partitioned = partition::create_option(req.param("partitioned"), name)?;
            // One shard holds everything; `q` is kept to report it back.
            let q = match req.uint_param("q")? {
                Some(0) => return Err(CouchError::bad_request("q must be a positive integer")),
                q => q,
            };
            db.create(name, &new_instance())?;
            if let Some(q) = q {
                db.set_shard_count(q)?;
            }
            if partitioned {
                db.set_partitioned()?;
            }
            let r = Response::json(201, &json!({"ok": true})).with_header(
                "location",
                req.absolute_uri(&format!("/{}", encode_segment(name))),
            );
            Ok(Outcome {
                reply: Reply::Done(r),
                event: Some(DbEvent::Created),
            })
        } else {
            if req.param("rev").is_some() {
                return Err(CouchError::bad_request(
                    "You tried to DELETE a database with a ?=rev parameter. Did you mean to DELETE a document instead?",
                ));
            }
            db.delete()?;
            Ok(Outcome {
                reply: Reply::Done(Response::ok()),
                event: Some(DbEvent::Deleted),
            })
        };
    }
    let access = Access::load(db, &req.user, users)?;
    db.redact_for.replace(access.redacting_reader());
    match rest.as_slice() {
        [] => match m {
            "GET" | "HEAD" => {
                access.member()?;
                done(Response::json(200, &db.info()?))
            }
            "POST" => {
                access.member()?;
                require_json(req)?;
                let mut doc = IncomingDoc::parse(req.json_body()?)?;
                let id = doc.id.clone().unwrap_or_else(uuids::next);
                if doc::is_local(&id) {
                    let rev = db.put_local(&id, req.json_body()?, None)?;
                    return updated(write_reply(req, name, &id, &rev, 201));
                }
                let rev = batched(req, || {
                    access.before_write(db, &id, &mut doc)?;
                    db.save_one(&id, &doc, true)
                })?;
                updated(write_reply(req, name, &id, &rev, 201))
            }
            _ => method_not_allowed("DELETE,GET,HEAD,POST,PUT"),
        },
        ["_all_docs"] => all_docs(db, req, Index::All, &access, None),
        ["_design_docs"] => all_docs(db, req, Index::Design, &access, None),
        ["_local_docs"] => all_docs(db, req, Index::Local, &access, None),
        [list @ ("_all_docs" | "_design_docs" | "_local_docs"), "queries"] => {
            only(req, "POST")?;
            let index = match *list {
                "_all_docs" => Index::All,
                "_design_docs" => Index::Design,
                _ => Index::Local,
            };
            all_docs_queries(db, req, index, &access)
        }
        ["_changes"] => {
            access.list("_changes")?;
            changes(db, req)
        }
        ["_bulk_docs"] => {
            only(req, "POST")?;
            access.member()?;
            require_json(req)?;
            let body = req.json_object_body()?;
            let results = db.bulk_docs(body, &|id, doc| access.before_write(db, id, doc))?;
            updated(Response::json(201, &results))
        }
        ["_bulk_get"] => {
            only(req, "POST")?;
            access.list("_bulk_get")?;
            require_json(req)?;
            let body = req.json_object_body()?;
            done(Response::raw_json(
                200,
                db.bulk_get(&body, &ReadOpts::from_request(req)?)?,
            ))
        }
        [op @ ("_revs_diff" | "_missing_revs")] => {
            only(req, "POST")?;
            access.list(op)?;
            let body = req.json_object_body()?;
            let answer = if *op == "_revs_diff" {
                json!(db.revs_diff(&body)?)
            } else {
                json!(db.missing_revs(&body)?)
            };
            done(Response::json(200, &answer))
        }
        ["_ensure_full_commit"] => {
            only(req, "POST")?;
            access.member()?;
            done(Response::json(
                201,
                &json!({"ok": true, "instance_start_time": "0"}),
            ))
        }
        ["_shards"] => {
            only(req, "GET")?;
            access.member()?;
            done(Response::json(
                200,
                &partition::shards(db.shard_count()?, NODE_NAME),
            ))
        }
        ["_shards", id @ ..] => {
            only(req, "GET")?;
            access.member()?;
            let partitioned = db.meta()?.partitioned;
            let shard =
                partition::shard_of(&id.join("/"), partitioned, db.shard_count()?, NODE_NAME);
            done(Response::json(200, &shard))
        }
        // One actor holds every shard: there is nothing to synchronise.
        ["_sync_shards"] => {
            only(req, "POST")?;
            access.db_admin()?;
            done(Response::json(202, &json!({"ok": true})))
        }
        ["_partition"] => Err(CouchError::bad_request("invalid_partition_req")),
        ["_partition", p] => {
            only(req, "GET")?;
            access.member()?;
            done(Response::json(200, &db.partition_info(p)?))
        }
        // CouchDB serves these as the database's own, narrowed by the
        // partition; anything else under a partition is missing.
        ["_partition", p, sub @ ..] => {
            db.check_partition(p)?;
            match sub {
                ["_all_docs"] => all_docs(db, req, Index::All, &access, Some(p)),
                ["_design", ddoc, "_view", view] => {
                    view_query(db, req, &access, ddoc, view, Some(p))
                }
                ["_design", ddoc, "_info"] => {
                    access.member()?;
                    done(Response::json(200, &db.design_info(ddoc)?))
                }
                ["_design", ddoc, api @ ("_search" | "_nouveau"), index] => {
                    search_query(db, req, &access, ddoc, api, index, Some(p))
                }
                [op @ ("_find" | "_explain")] => mango_query(db, req, &access, op, Some(p)),
                ["_index", at @ ..] => mango_index(db, req, &access, at),
                _ => Err(CouchError::not_found("missing")),
            }
        }
        ["_revs_limit"] => setting(
            req,
            &access,
            || Ok(json!(db.revs_limit()?)),
            |v| db.set_revs_limit(v),
        ),
        ["_purge"] => {
            only(req, "POST")?;
            access.db_admin()?;
            require_json(req)?;
            let reqs = shared::purge::parse(&req.json_object_body()?)?;
            let purged = db.purge(&reqs)?;
            updated(Response::json(201, &shared::purge::response(&purged)))
        }
        ["_purged_infos_limit"] => setting(
            req,
            &access,
            || Ok(json!(db.purged_infos_limit()?)),
            |v| db.set_purged_infos_limit(v),
        ),
        ["_security"] => setting(
            req,
            &access,
            || Ok(json!(db.security()?)),
            |v| db.set_security(v),
        ),
        // Compaction drops superseded revisions' bodies, then the
        // attachment contents no kept body references.
        ["_compact"] | ["_compact", _] | ["_view_cleanup"] => {
            only(req, "POST")?;
            access.db_admin()?;
            require_json(req)?;
            if rest == ["_compact"] {
                db.compact_revisions()?;
                db.compact_attachments()?;
            }
            if rest == ["_view_cleanup"] {
                db.view_cleanup()?;
            }
            // View indexes are SQLite tables, updated in place: compacting
            // one has nothing to do beyond checking it exists, as CouchDB.
            if let ["_compact", ddoc] = rest[..] {
                db.design_doc(ddoc)?;
            }
            done(Response::json(202, &json!({"ok": true})))
        }
        ["_temp_view"] => {
            only(req, "POST")?;
            // Running arbitrary functions over every document is for
            // admins, as in CouchDB 1.x.
            access.db_admin()?;
            require_json(req)?;
            let body = req.json_object_body()?;
            done(Response::json(200, &db.query_temp_view(req, &body)?))
        }
        [op @ ("_find" | "_explain")] => mango_query(db, req, &access, op, None),
        ["_index", ..] => mango_index(db, req, &access, &rest[1..]),
        ["_local", id] => document(db, req, name, &format!("{LOCAL_PREFIX}{id}"), &access),
        ["_design", ddoc] => document(db, req, name, &format!("_design/{ddoc}"), &access),
        ["_design", ddoc, "_view", view] => view_query(db, req, &access, ddoc, view, None),
        ["_design", ddoc, "_view", view, "queries"] => {
            only(req, "POST")?;
            access.list("_view")?;
            require_json(req)?;
            let body = req.json_object_body()?;
            let results = db.query_view_multi(ddoc, view, body.get("queries"), None)?;
            done(Response::json(200, &results).conditional(req, &db.etag_salt()?))
        }
        ["_design", ddoc, "_info"] => {
            access.member()?;
            done(Response::json(200, &db.design_info(ddoc)?))
        }
        ["_design", ddoc, api @ ("_search" | "_nouveau"), index] => {
            search_query(db, req, &access, ddoc, api, index, None)
        }
        ["_design", ddoc, api @ ("_search_info" | "_nouveau_info"), index] => {
            only(req, "GET")?;
            access.member()?;
            let kind = search_kind(api);
            done(Response::json(200, &db.search_info(ddoc, kind, index)?))
        }
        ["_design", ddoc, "_search_disk_size", index] => {
            only(req, "GET")?;
            access.member()?;
            let info = db.search_info(ddoc, Kind::Search, index)?;
            let size = json!({"disk_size": info["search_index"]["disk_size"]});
            done(Response::json(
                200,
                &json!({"name": info["name"], "search_index": size}),
            ))
        }
        ["_search_cleanup" | "_nouveau_cleanup"] => {
            only(req, "POST")?;
            access.db_admin()?;
            db.transact(|| db.search_cleanup())?;
            done(Response::json(202, &json!({"ok": true})))
        }
        ["_design", ddoc, "_update", fname, id @ ..] => {
            if !matches!(m, "POST" | "PUT") {
                return method_not_allowed("POST,PUT");
            }
            access.member()?;
            let id = (!id.is_empty()).then(|| id.join("/"));
            let (r, saved) = crate::design::update_handlers::handle(
                db,
                req,
                &access,
                ddoc,
                fname,
                id.as_deref(),
            )?;
            Ok(Outcome {
                reply: Reply::Done(r),
                event: saved.then_some(DbEvent::Updated),
            })
        }
        ["_design", ddoc, "_show", fname, id @ ..] => {
            if !matches!(m, "GET" | "HEAD" | "POST") {
                return method_not_allowed("GET,HEAD,POST");
            }
            access.member()?;
            let id = (!id.is_empty()).then(|| id.join("/"));
            let r = crate::design::render::show(db, req, &access, ddoc, fname, id.as_deref())?;
            done(r)
        }
        ["_design", ddoc, "_list", lname, view_at @ ..] if matches!(view_at.len(), 1 | 2) => {
            access.list("_view")?;
            // CouchDB runs lists for OPTIONS as for GET.
            let body = if m == "OPTIONS" {
                None
            } else {
                query_body(req)?
            };
            // The view is in the same design document unless named with one.
            let (vddoc, view) = match view_at {
                [vddoc, view] => (*vddoc, *view),
                _ => (*ddoc, view_at[0]),
            };
            let r = crate::design::render::list(db, req, body.as_ref(), ddoc, lname, vddoc, view)?;
            done(r)
        }
        // A design function path without the function's name.
        ["_design", _, "_update" | "_show" | "_list" | "_view"] => {
            Err(CouchError::not_found("Invalid path."))
        }
        // Rewrites route requests by JavaScript: not offered, as in a
        // CouchDB whose rewrites are disabled.
        ["_design", _, "_rewrite", ..] => Err(CouchError::not_implemented(
            "Rewrite functions are not supported by this server",
        )),
        ["_design", ddoc, att @ ..] => attachment(
            db,
            req,
            name,
            &format!("_design/{ddoc}"),
            &att.join("/"),
            &access,
        ),
        [id] => document(db, req, name, id, &access),
        [id, att @ ..] => attachment(db, req, name, id, &att.join("/"), &access),
    }
}

fn only(req: &Request, method: &str) -> CouchResult<()> {
    if req.method == method {
        Ok(())
    } else {
        Err(CouchError::method_not_allowed(method))
    }
}

/// CouchDB refuses JSON endpoints' POSTs without a JSON content type.
fn require_json(req: &Request) -> CouchResult<()> {
    match req.header("content-type") {
        Some(ct) if ct.to_ascii_lowercase().starts_with("application/json") => Ok(()),
        _ => Err(CouchError::unsupported_media_type(
            "Content-Type must be application/json",
        )),
    }
}

/// The JSON body of a query endpoint that takes GET or POST.
fn query_body(req: &Request) -> CouchResult<Option<serde_json::Map<String, Value>>> {
    match req.method.as_str() {
        "GET" | "HEAD" => Ok(None),
        "POST" => {
            require_json(req)?;
            Ok(Some(req.json_object_body()?))
        }
        _ => method_not_allowed("GET,HEAD,POST"),
    }
}

/// `_all_docs` and its kin; `partition` narrows it to one partition's ids.
fn all_docs(
    db: &Database,
    req: &Request,
    index: Index,
    access: &Access,
    partition: Option<&str>,
) -> CouchResult<Outcome> {
    access.list(match index {
        Index::All => "_all_docs",
        Index::Design => "_design_docs",
        Index::Local => "_local_docs",
    })?;
    let body = query_body(req)?;
    let mut q = AllDocsQuery::from_request(req, body.as_ref())?;
    if index == Index::All {
        if let Some(p) = db.query_partition(partition, req.param("partition"))? {
            q.limit = Some(partition::query_limit(
                q.limit,
                db.limits.partition_query_limit,
            )?);
            q = partition::scope_all_docs(q, &p);
        }
    }
    let r = Response::raw_json(200, db.all_docs(&q, index)?);
    // Writes to `_local` documents move no sequence, so their list has none.
    done(match index {
        Index::Local => r,
        _ => r.tagged(req, db.state_etag(req)?),
    })
}

/// `POST /db/_all_docs/queries`: each query of the body's `queries` list
/// answered as `_all_docs` would, in `{"results": [...]}`.
fn all_docs_queries(
    db: &Database,
    req: &Request,
    index: Index,
    access: &Access,
) -> CouchResult<Outcome> {
    access.list("_all_docs")?;
    require_json(req)?;
    let body = req.json_object_body()?;
    let queries = body
        .get("queries")
        .and_then(Value::as_array)
        .ok_or_else(|| CouchError::bad_request("`queries` member must be an array"))?;
    let bare = Request::new("GET", "/", "");
    let parsed = queries
        .iter()
        .map(|q| match q {
            Value::Object(o) => AllDocsQuery::from_request(&bare, Some(o)),
            _ => Err(CouchError::bad_request("Each query must be a JSON object")),
        })
        .collect::<CouchResult<Vec<_>>>()?;
    let mut out = b"{\"results\":[".to_vec();
    for (i, q) in parsed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(db.all_docs(q, index)?);
    }
    out.extend(b"]}");
    done(Response::raw_json(200, out))
}

fn changes(db: &Database, req: &Request) -> CouchResult<Outcome> {
    let body = query_body(req)?;
    let mut q = ChangesQuery::from_request(req, body.as_ref())?;
    // Kept-open feeds read through a fresh engine later: the redaction
    // travels with the query.
    q.redact_for = db.redact_for.borrow().clone();
    let since = db.resolve_since(&q)?;
    if q.feed == Feed::WebSocket {
        if q.redact_for.is_some() && q.include_docs {
            return Err(CouchError::forbidden(
                "Only admins can follow this database's documents over a WebSocket.",
            ));
        }
        if !req
            .header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            return Err(CouchError::bad_request(
                "feed=websocket needs a WebSocket upgrade request",
            ));
        }
        let params = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                req.query
                    .iter()
                    .filter(|(k, _)| k != "since" && k != "feed"),
            )
            .finish();
        return Ok(Outcome {
            reply: Reply::Subscribe { params, since },
            event: None,
        });
    }
    let normal = q.feed == Feed::Normal;
    let reply = match feed::reply(db, q, since)? {
        // As CouchDB, a normal feed's answer carries an `ETag`.
        Reply::Done(r) if normal => Reply::Done(r.tagged(req, db.state_etag(req)?)),
        other => other,
    };
    Ok(Outcome { reply, event: None })
}

/// A database setting: members read it, database admins replace it.
fn setting(
    req: &Request,
    access: &Access,
    get: impl FnOnce() -> CouchResult<Value>,
    put: impl FnOnce(&Value) -> CouchResult<()>,
) -> CouchResult<Outcome> {
    match req.method.as_str() {
        "GET" => {
            access.member()?;
            done(Response::json(200, &get()?))
        }
        "PUT" => {
            access.db_admin()?;
            put(&req.json_body()?)?;
            done(Response::ok())
        }
        _ => method_not_allowed("GET,PUT"),
    }
}

/// Runs a document write; with `batch=ok` a refusal the write itself makes
/// (a conflict, `validate_doc_update`) is dropped, as CouchDB answers 202 at
/// once and writes in the background. The rev is empty when dropped.
fn batched(req: &Request, write: impl FnOnce() -> CouchResult<Rev>) -> CouchResult<String> {
    match write() {
        Ok(rev) => Ok(rev.to_string()),
        Err(e) if req.param("batch") == Some("ok") && matches!(e.status, 401 | 403 | 409) => {
            Ok(String::new())
        }
        Err(e) => Err(e),
    }
}

/// The `{"ok", "id", "rev"}` answer to a write, with `ETag` and `Location`;
/// with `batch=ok` CouchDB's 202 `{"ok", "id"}`.
fn write_reply(req: &Request, db: &str, id: &str, rev: &str, status: u16) -> Response {
    if req.param("batch") == Some("ok") {
        return Response::json(202, &json!({"ok": true, "id": id}));
    }
    let location = req.absolute_uri(&format!("/{}/{}", encode_segment(db), doc_path(id)));
    Response::json(status, &json!({"ok": true, "id": id, "rev": rev}))
        .with_header("etag", format!("\"{rev}\""))
        .with_header("location", location)
}

/// A document id as a URL path (design and local prefixes keep their slash).
fn doc_path(id: &str) -> String {
    for prefix in ["_design/", LOCAL_PREFIX] {
        if let Some(rest) = id.strip_prefix(prefix) {
            return format!("{prefix}{}", encode_segment(rest));
        }
    }
    encode_segment(id)
}

fn document(
    db: &Database,
    req: &Request,
    dbname: &str,
    id: &str,
    access: &Access,
) -> CouchResult<Outcome> {
    doc::validate_id(id)?;
    let local = doc::is_local(id);
    if local && access.users_db {
        access.db_admin()?;
    }
    access.member()?;
    match req.method.as_str() {
        "GET" | "HEAD" if local => done(Response::raw_json(200, db.get_local(id)?)),
        "GET" | "HEAD" => {
            access.before_read(id)?;
            get_document(db, req, id)
        }
        "PUT" => {
            let ct = req.header("content-type").unwrap_or("");
            let (body, follows) = if ct.to_ascii_lowercase().starts_with("multipart/related") {
                shared::multipart::related_document(&req.body, ct)?
            } else {
                (req.json_body()?, vec![])
            };
            if local {
                let rev = db.put_local(id, body, req.param("rev"))?;
                return updated(write_reply(req, dbname, id, &rev, 201));
            }
            let mut doc = IncomingDoc::parse(body)?;
            doc.raw_attachments = follows;
            doc.rev = request_rev(req, doc.rev.as_ref())?;
            let new_edits = req.bool_param("new_edits")?.unwrap_or(true);
            let rev = batched(req, || {
                access.before_write(db, id, &mut doc)?;
                db.save_one(id, &doc, new_edits)
            })?;
            updated(write_reply(req, dbname, id, &rev, 201))
        }
        "DELETE" => {
            if local {
                let rev = req.param("rev");
                db.put_local(id, json!({"_deleted": true}), rev)?;
                return updated(Response::json(
                    200,
                    &json!({"ok": true, "id": id, "rev": "0-0"}),
                ));
            }
            let rev = request_rev(req, None)?;
            let existing = db.store.load_doc(id)?;
            if existing.is_none() {
                db.meta()?;
                return Err(CouchError::doc_not_found(false));
            }
            if rev.is_none() {
                return Err(CouchError::conflict());
            }
            let mut doc = IncomingDoc {
                rev,
                deleted: true,
                ..Default::default()
            };
            access.before_write(db, id, &mut doc)?;
            let rev = db.save_one(id, &doc, true)?;
            updated(write_reply(req, dbname, id, &rev.to_string(), 200))
        }
        "COPY" => {
            access.before_read(id)?;
            copy_document(db, req, dbname, id, access)
        }
        // CouchDB takes only HTML form uploads here (`multipart/form-data`),
        // which Settee does not offer; anything else is a 415 either way.
        "POST" => {
            let ct = req
                .header("content-type")
                .unwrap_or("")
                .to_ascii_lowercase();
            if ct.starts_with("multipart/form-data") {
                return Err(CouchError::not_implemented(
                    "HTML form uploads are not supported by this server",
                ));
            }
            Err(CouchError::new(
                415,
                "bad_content_type",
                "Invalid Content-Type header for form upload",
            ))
        }
        _ => method_not_allowed("DELETE,GET,HEAD,POST,PUT,COPY"),
    }
}

/// `/{db}/_design/{ddoc}/_view/{view}`, or the same within a partition:
/// one query, or several in a `queries` body.
fn view_query(
    db: &Database,
    req: &Request,
    access: &Access,
    ddoc: &str,
    view: &str,
    partition: Option<&str>,
) -> CouchResult<Outcome> {
    access.list("_view")?;
    let body = query_body(req)?;
    if let Some(queries) = body.as_ref().and_then(|b| b.get("queries")) {
        let partition = db.query_partition(partition, req.param("partition"))?;
        let results = db.query_view_multi(ddoc, view, Some(queries), partition.as_deref())?;
        return done(Response::json(200, &results).conditional(req, &db.etag_salt()?));
    }
    let mut q = ViewQuery::from_request(req, body.as_ref())?;
    q.partition = db.query_partition(partition, req.param("partition"))?;
    // Included documents may change without the index changing.
    let salt = if q.include_docs {
        db.etag_salt()?
    } else {
        String::new()
    };
    done(Response::json(200, &db.query_view(ddoc, view, &q)?).conditional(req, &salt))
}

fn search_kind(api: &str) -> Kind {
    if api.starts_with("_nouveau") {
        Kind::Nouveau
    } else {
        Kind::Search
    }
}

/// `/{db}/_design/{ddoc}/_search/{index}` and `.../_nouveau/{index}`, or
/// the same within a partition.
fn search_query(
    db: &Database,
    req: &Request,
    access: &Access,
    ddoc: &str,
    api: &str,
    index: &str,
    partition: Option<&str>,
) -> CouchResult<Outcome> {
    access.list(api)?;
    let body = query_body(req)?;
    let mut q = SearchQuery::from_request(req, body.as_ref())?;
    q.partition = db.query_partition(partition, q.partition.as_deref())?;
    done(Response::json(
        200,
        &db.search(ddoc, search_kind(api), index, &q)?,
    ))
}

/// `/{db}/_index`: list and create Mango indexes, and delete one.
fn mango_index(db: &Database, req: &Request, access: &Access, at: &[&str]) -> CouchResult<Outcome> {
    match at {
        [] => match req.method.as_str() {
            "GET" | "HEAD" => {
                access.list("_index")?;
                let skip = req.uint_param("skip")?.unwrap_or(0);
                done(Response::json(
                    200,
                    &db.list_indexes(skip, req.uint_param("limit")?)?,
                ))
            }
            "POST" => {
                access.member()?;
                require_json(req)?;
                let body = req.json_object_body()?;
                let result = db.create_index(&body, &|id, doc| access.before_write(db, id, doc))?;
                updated(Response::json(200, &result))
            }
            _ => method_not_allowed("GET,HEAD,POST"),
        },
        ["_design", ddoc, ty @ ("json" | "text"), index]
        | [ddoc, ty @ ("json" | "text"), index] => {
            only(req, "DELETE")?;
            access.member()?;
            let result = db.delete_index(ddoc, *ty == "text", index, &|id, doc| {
                access.before_write(db, id, doc)
            })?;
            updated(Response::json(200, &result))
        }
        _ => Err(CouchError::not_found("missing")),
    }
}

/// `POST /{db}/_find` or `_explain`, or the same within a partition.
fn mango_query(
    db: &Database,
    req: &Request,
    access: &Access,
    op: &str,
    partition: Option<&str>,
) -> CouchResult<Outcome> {
    only(req, "POST")?;
    access.list(op)?;
    require_json(req)?;
    let body = req.json_object_body()?;
    // The body's `partition` ("" for none) stands for the path's.
    let given = match body.get("partition") {
        None => req.param("partition"),
        Some(Value::String(p)) if p.is_empty() => req.param("partition"),
        Some(Value::String(p)) => Some(p.as_str()),
        Some(other) => {
            return Err(CouchError::bad_request(format!(
                "Invalid value for `partition`: {other}"
            )))
        }
    };
    let partition = db.query_partition(partition, given)?;
    let partition = partition.as_deref();
    let answer = if op == "_find" {
        db.find(&body, partition)?
    } else {
        db.explain(&body, partition)?
    };
    done(Response::json(200, &answer))
}

/// `/{db}/{doc}/{att}`: read, add or replace, and delete one attachment.
fn attachment(
    db: &Database,
    req: &Request,
    dbname: &str,
    id: &str,
    name: &str,
    access: &Access,
) -> CouchResult<Outcome> {
    doc::validate_id(id)?;
    if doc::is_local(id) {
        return Err(CouchError::bad_request(
            "_local documents do not have attachments",
        ));
    }
    access.member()?;
    match req.method.as_str() {
        "GET" | "HEAD" => {
            access.before_read(id)?;
            done(db.get_attachment(req, id, name)?)
        }
        "PUT" | "DELETE" => {
            shared::attachments::validate_name(name)?;
            let rev = request_rev(req, None)?;
            let mut doc = db.doc_for_attachment_write(id, rev)?;
            if req.method == "PUT" {
                let content_type = req
                    .header("content-type")
                    .unwrap_or("application/octet-stream");
                doc.put_attachment(name, content_type, req.body.clone());
            } else {
                doc.delete_attachment(name)?;
            }
            access.before_write(db, id, &mut doc)?;
            let rev = db.save_one(id, &doc, true)?;
            if req.method == "DELETE" {
                return updated(Response::json(
                    200,
                    &json!({"ok": true, "id": id, "rev": rev.to_string()}),
                ));
            }
            // The answer points at the attachment, as CouchDB's does.
            let mut resp = write_reply(req, dbname, id, &rev.to_string(), 201);
            let at = format!(
                "/{}/{}/{}",
                encode_segment(dbname),
                doc_path(id),
                encode_segment(name)
            );
            resp.set_header("location", req.absolute_uri(&at));
            updated(resp)
        }
        _ => method_not_allowed("DELETE,GET,HEAD,PUT"),
    }
}

fn get_document(db: &Database, req: &Request, id: &str) -> CouchResult<Outcome> {
    let opts = ReadOpts::from_request(req)?;
    if let Some(open) = req.param("open_revs") {
        let revs = doc_read::open_revs_param(open)?;
        db.meta()?;
        let as_json = req.accepts("application/json");
        let read = if as_json {
            opts.clone()
        } else {
            opts.stubs_only()
        };
        let answers = db.open_revs(id, revs.as_deref(), &read)?;
        let related = if !as_json && opts.wants_contents() {
            answers
                .iter()
                .map(|a| match a {
                    OpenRev::Ok(doc) => db.follows_form(doc, &opts),
                    OpenRev::Missing(_) => Ok(None),
                })
                .collect::<CouchResult<Vec<_>>>()?
        } else {
            vec![]
        };
        return done(doc_read::open_revs_response(as_json, answers, related));
    }
    let rev = req.param("rev").map(Rev::lookup).transpose()?;
    let multipart = opts.wants_contents() && req.accepts("multipart/related");
    let read = if multipart {
        opts.stubs_only()
    } else {
        opts.clone()
    };
    let (rev, json) = db.get_doc(id, rev.as_ref(), &read)?;
    let etag = format!("\"{rev}\"");
    if req.header("if-none-match") == Some(etag.as_str()) {
        return done(Response::empty(304).with_header("etag", etag));
    }
    if multipart {
        if let Some((doc, parts)) = db.follows_form(&json, &opts)? {
            return done(doc_read::related_response(&doc, &parts).with_header("etag", etag));
        }
    }
    done(Response::raw_json(200, json).with_header("etag", etag))
}

fn copy_document(
    db: &Database,
    req: &Request,
    dbname: &str,
    id: &str,
    access: &Access,
) -> CouchResult<Outcome> {
    let (dest_id, dest_rev) = doc::copy_destination(req.header("destination"))?;
    let src_rev = req.param("rev").map(Rev::lookup).transpose()?;
    let (_, json) = db.get_doc(id, src_rev.as_ref(), &ReadOpts::default())?;
    let mut value: Value = serde_json::from_slice(&json)?;
    let obj = value.as_object_mut().expect("documents are objects");
    obj.shift_remove("_id");
    obj.shift_remove("_rev");
    let mut doc = IncomingDoc::parse(value)?;
    doc.rev = dest_rev;
    access.before_write(db, &dest_id, &mut doc)?;
    let rev = db.save_one(&dest_id, &doc, true)?;
    updated(write_reply(req, dbname, &dest_id, &rev.to_string(), 201))
}
