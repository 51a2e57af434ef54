//! `make dev`: serves Settee on workerd with storage persisted on disk.
//!
//! Usage: `settee-serve --port 5984 --state .settee/state --vars .dev.vars`

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// workerd's PID, for the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Passes SIGINT/SIGTERM on to workerd, so stopping `make dev` (Ctrl-C, or
/// a kill of this process alone) never leaves workerd running.
extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn main() {
    let mut port = 5984u16;
    let mut state = PathBuf::from(".settee/state");
    let mut vars_file = PathBuf::from(".dev.vars");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--port" => port = v.parse().unwrap_or_else(|_| usage(&a)),
            "--state" => state = PathBuf::from(v),
            "--vars" => vars_file = PathBuf::from(v),
            _ => usage(&a),
        }
    }
    let vars = read_vars(&vars_file);
    std::fs::create_dir_all(&state).expect("create state directory");
    let state = state.canonicalize().expect("state directory");
    let config = e2e::prepare(&state, port, &vars).unwrap_or_else(|e| {
        eprintln!("settee-serve: {e}");
        std::process::exit(1);
    });
    let mut child = e2e::spawn_workerd(&config, false).expect("start workerd");
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // SAFETY: installs a handler that only calls kill(2).
    unsafe {
        libc::signal(libc::SIGINT, forward as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, forward as *const () as libc::sighandler_t);
    }
    if e2e::wait_up(port, Duration::from_secs(30)) {
        let user = vars
            .iter()
            .find(|(k, _)| k == "COUCHDB_USER")
            .map(|(_, v)| v.as_str());
        println!(
            "Settee is up at http://127.0.0.1:{port}/ (admin: {})",
            user.unwrap_or("?")
        );
        println!("Data persists in {}", state.join("data").display());
    }
    let status = child.wait().expect("workerd runs");
    std::process::exit(status.code().unwrap_or(0));
}

fn usage(arg: &str) -> ! {
    eprintln!("settee-serve: bad argument {arg}\nusage: settee-serve [--port N] [--state DIR] [--vars FILE]");
    std::process::exit(2)
}

/// Reads `KEY=value` lines (as wrangler's `.dev.vars`); the process
/// environment wins over the file.
fn read_vars(path: &PathBuf) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect();
    for (k, v) in vars.iter_mut() {
        if let Ok(env) = std::env::var(k.as_str()) {
            *v = env;
        }
    }
    vars
}
