//! Fauxton in Debian's Chromium, headless (`e2e/js/fauxton-browser.mjs`):
//! log in, create a database, create and edit a document, upload an
//! attachment, delete a document, resolve a conflict in the revision
//! browser, build a view,
//! run a Mango query, start a one-shot replication, open the admin pages
//! and verify the install, failing on any error shown or 5xx answer. A
//! screenshot of each step lands in `target/e2e-screenshots/fauxton/`.

use e2e::{repo_root, run_client, Settee, ADMIN, PASSWORD};

#[test]
fn fauxton_in_a_real_browser() {
    let s = Settee::start();
    let shots = repo_root().join("target/e2e-screenshots/fauxton");
    let _ = std::fs::remove_dir_all(&shots);
    let base = s.url("");
    run_client(
        "node",
        "js/fauxton-browser.mjs",
        &[&base, ADMIN, PASSWORD, shots.to_str().unwrap()],
    );
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 25, "a screenshot per step: {taken}");
}
