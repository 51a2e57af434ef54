//! Whether workerd's Durable Object SQLite has FTS5 (#17 builds full-text
//! search on it): a tiny Worker tries the tokenizers, ranking, highlights
//! and vocabulary tables a search index needs.
use e2e::{
    capnp_string, free_port, repo_root, send, spawn_workerd, terminate, wait_up_path,
    COMPATIBILITY_DATE,
};
use serde_json::json;
use std::time::Duration;

#[test]
fn durable_object_sqlite_has_fts5() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(
        repo_root().join("e2e/js/fts5-probe/worker.js"),
        dir.path().join("worker.js"),
    )
    .unwrap();
    let config = dir.path().join("probe.capnp");
    std::fs::write(
        &config,
        format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "probe", worker = .probe), (name = "storage", disk = (path = {data}, writable = true))],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "probe")],
);
const probe :Workerd.Worker = (
  compatibilityDate = "{COMPATIBILITY_DATE}",
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  bindings = [(name = "PROBE", durableObjectNamespace = "Probe")],
  durableObjectNamespaces = [(className = "Probe", uniqueKey = "settee-fts5-probe", enableSql = true)],
  durableObjectStorage = (localDisk = "storage"),
);
"#,
            data = capnp_string(&dir.path().join("data").display().to_string())
        ),
    )
    .unwrap();
    let mut child = spawn_workerd(&config, true).unwrap();
    let up = wait_up_path(port, "/", Duration::from_secs(20));
    let answer = up.then(|| send(ureq::get(&format!("http://127.0.0.1:{port}/")), None));
    terminate(&mut child);
    let (status, v) = answer.expect("the probe Worker started");
    assert_eq!(status, 200, "{v}");
    // Porter stemming ("running" matches "run"), prefix queries, bm25 and
    // highlight; phrases with NOT; fts5vocab; the trigram tokenizer.
    assert_eq!(
        v["porter"]["ok"],
        json!([{"title": "Running dogs", "marked": "the quick brown fox [jumps]"}]),
        "{v}"
    );
    assert_eq!(v["phrase"]["ok"], json!([{"title": "Cats"}]), "{v}");
    assert_eq!(
        v["vocab"]["ok"],
        json!([{"term": "all"}, {"term": "brown"}, {"term": "cat"}]),
        "{v}"
    );
    assert_eq!(v["trigram"]["ok"], json!([{"x": "settee"}]), "{v}");
}
