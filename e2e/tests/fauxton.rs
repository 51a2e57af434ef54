//! Fauxton at `/_utils/`, served from the static assets on a real workerd.

use e2e::{send, Settee};
use std::io::Read;

fn get(s: &Settee, path: &str) -> ureq::Response {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent.get(&s.url(path)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

fn body(r: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.into_reader().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn fauxton_is_served_at_utils() {
    let s = Settee::start();
    let r = get(&s, "/_utils");
    assert_eq!(r.status(), 301);
    assert_eq!(r.header("location"), Some("/_utils/"));

    let r = get(&s, "/_utils/");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let page = String::from_utf8(body(r)).unwrap();
    assert!(page.contains("<title>Project Fauxton</title>"), "{page}");

    // Every script and stylesheet the page names is there, with its type
    // and the long cache of a content-hashed name.
    let refs: Vec<&str> = page
        .split(['"', '\''])
        .filter(|p| {
            p.starts_with("dashboard.assets/") && (p.ends_with(".js") || p.ends_with(".css"))
        })
        .collect();
    assert!(refs.len() >= 3, "{refs:?}");
    for path in refs {
        let r = get(&s, &format!("/_utils/{path}"));
        assert_eq!(r.status(), 200, "{path}");
        let want = if path.ends_with(".js") {
            "application/javascript"
        } else {
            "text/css"
        };
        assert_eq!(r.header("content-type"), Some(want), "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(body(r).len() > 1000, "{path}");
    }
    let logo = get(&s, "/_utils/dashboard.assets/img/couchdb-logo.png");
    assert_eq!(logo.header("content-type"), Some("image/png"));
    assert_eq!(&body(logo)[1..4], b"PNG");

    let (st, v) = send(s.anon("GET", "/_utils/nope.js"), None);
    assert_eq!((st, v["error"].as_str()), (404, Some("not_found")));
    // The runtime resolves the dot segment before the router sees it
    // (`/index.html`, no database name): never a file outside `/_utils`.
    let (st, v) = send(s.anon("GET", "/_utils/%2E%2E/index.html"), None);
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("illegal_database_name"))
    );
    assert_eq!(send(s.anon("POST", "/_utils/"), None).0, 405);
    // The welcome is still CouchDB's.
    assert_eq!(send(s.anon("GET", "/"), None).1["couchdb"], "Welcome");
}
