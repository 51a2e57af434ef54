//! Runs the built Settee Worker on a local `workerd`, as production runs it
//! on Cloudflare, and gives tests an HTTP client for it.
//!
//! The same code serves `make dev` (through the `settee-serve` binary), so
//! what the tests start is exactly what a developer runs.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Compatibility date of the Worker (also in `wrangler.toml`).
pub const COMPATIBILITY_DATE: &str = "2026-04-01";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

/// The built bundle (`make build` puts it there).
pub fn bundle_dir() -> PathBuf {
    std::env::var_os("SETTEE_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("router/build"))
}

/// Fauxton's release, the Worker's static assets (`scripts/setup.sh`
/// fetches it).
pub fn assets_dir() -> PathBuf {
    std::env::var_os("SETTEE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".settee/fauxton"))
}

/// The `workerd` binary that npm installed with wrangler.
pub fn workerd_bin() -> PathBuf {
    std::env::var_os("WORKERD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            repo_root().join("node_modules/@cloudflare/workerd-linux-64/bin/workerd")
        })
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn capnp_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The workerd configuration: the Worker, its Durable Object namespaces with
/// SQLite storage on disk under `data`, text bindings for `vars`, and the
/// static assets (Fauxton) from `assets`, as a disk service bound as
/// `ASSETS` the way Workers Static Assets are on Cloudflare.
pub fn workerd_config(
    port: u16,
    data: &Path,
    assets: Option<&Path>,
    vars: &[(String, String)],
) -> String {
    let assets_binding = assets.map(|_| "(name = \"ASSETS\", service = \"assets\")".to_string());
    let assets_service = assets.map_or(String::new(), |dir| {
        format!(
            "\n    (name = \"assets\", disk = (path = {})),",
            capnp_string(&dir.display().to_string())
        )
    });
    let bindings: Vec<String> = [
        ("DB", "DbActor"),
        ("CATALOG", "CatalogActor"),
        ("REPLICATOR", "ReplicatorActor"),
    ]
    .iter()
    .map(|(b, c)| format!("(name = \"{b}\", durableObjectNamespace = \"{c}\")"))
    .chain(
        vars.iter()
            .map(|(k, v)| format!("(name = {}, text = {})", capnp_string(k), capnp_string(v))),
    )
    .chain(assets_binding)
    .collect();
    let namespaces: Vec<String> = ["DbActor", "CatalogActor", "ReplicatorActor"]
        .iter()
        .map(|c| format!("(className = \"{c}\", uniqueKey = \"settee-{c}\", enableSql = true)"))
        .collect();
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "settee", worker = .settee),
    (name = "storage", disk = (path = {data}, writable = true)),{assets_service}
    # Outbound fetch (remote replication peers), loopback and LAN included:
    # the default network service reaches public addresses only.
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "settee")],
);

const settee :Workerd.Worker = (
  compatibilityDate = "{COMPATIBILITY_DATE}",
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  bindings = [
    {bindings}
  ],
  durableObjectNamespaces = [
    {namespaces}
  ],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "internet",
);
"#,
        data = capnp_string(&data.display().to_string()),
        assets_service = assets_service,
        bindings = bindings.join(",\n    "),
        namespaces = namespaces.join(",\n    "),
    )
}

/// Writes the config and a copy of the bundle into `dir` (workerd embeds
/// files relative to its config); returns the config's path.
pub fn prepare(dir: &Path, port: u16, vars: &[(String, String)]) -> std::io::Result<PathBuf> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let bundle = bundle_dir();
    for f in ["index.js", "index_bg.wasm"] {
        std::fs::copy(bundle.join(f), dir.join(f)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{} missing ({e}): run `make build` first",
                    bundle.join(f).display()
                ),
            )
        })?;
    }
    let config = dir.join("settee.capnp");
    let assets = assets_dir();
    let assets = assets
        .join("index.html")
        .exists()
        .then_some(assets.as_path());
    std::fs::File::create(&config)?
        .write_all(workerd_config(port, &data, assets, vars).as_bytes())?;
    Ok(config)
}

/// Starts workerd on a prepared config.
pub fn spawn_workerd(config: &Path, quiet: bool) -> std::io::Result<Child> {
    let mut cmd = Command::new(workerd_bin());
    cmd.arg("serve").arg(config).arg("--experimental");
    if quiet {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd.spawn()
}

/// Stops a process the way workerd expects: SIGTERM to its own PID.
pub fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on a PID we spawned and have not yet reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `GET /_up` answers.
pub fn wait_up(port: u16, timeout: Duration) -> bool {
    wait_up_path(port, "/_up", timeout)
}

/// Waits until `GET path` answers 200 (any CouchDB-like server).
pub fn wait_up_path(port: u16, path: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let url = format!("http://127.0.0.1:{port}{path}");
    while Instant::now() < deadline {
        if let Ok(r) = ureq::get(&url).timeout(Duration::from_millis(500)).call() {
            if r.status() == 200 {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "e2e-Secret-pw";

/// A running Settee for one test: its own port and its own storage.
pub struct Settee {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Settee {
    pub fn start() -> Settee {
        Self::start_with(&[])
    }

    /// Starts with extra environment values (limits, ...).
    pub fn start_with(extra: &[(&str, &str)]) -> Settee {
        let mut vars = vec![
            ("COUCHDB_USER".to_string(), ADMIN.to_string()),
            ("COUCHDB_PASSWORD".to_string(), PASSWORD.to_string()),
            (
                "COUCHDB_SECRET".to_string(),
                "e2e-cookie-secret".to_string(),
            ),
        ];
        for (k, v) in extra {
            vars.retain(|(n, _)| n != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let mut s = Settee {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            vars,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let config = prepare(self.dir.path(), self.port, &self.vars).expect("workerd config");
        let quiet = std::env::var_os("SETTEE_E2E_LOGS").is_none();
        self.child = Some(spawn_workerd(&config, quiet).expect("workerd starts"));
        assert!(
            wait_up(self.port, Duration::from_secs(30)),
            "workerd did not come up"
        );
    }

    /// Stops workerd and starts it again on the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Kills workerd with SIGKILL (no chance to finish anything, as a
    /// crash or a machine loss) and starts it again on the same storage.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a PID we spawned and have not yet reaped.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
        self.launch();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    /// workerd's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The URL with the admin's credentials in it (as PouchDB takes them).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{ADMIN}:{PASSWORD}@127.0.0.1:{}{path}", self.port)
    }

    /// A request as the server admin.
    pub fn admin(&self, method: &str, path: &str) -> ureq::Request {
        self.anon(method, path)
            .set("authorization", &basic(ADMIN, PASSWORD))
    }

    /// A request with no credentials.
    pub fn anon(&self, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60))
    }
}

impl Drop for Settee {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU time (user + system, in clock ticks) a process has used so far.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// An `Authorization: Basic` value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {creds}")
}

/// Status and JSON body of a response, whatever its status.
pub fn send(req: ureq::Request, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    let r = match body {
        Some(b) => req
            .set("content-type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let content_type = resp.content_type().to_string();
    let settee = resp.header("server").is_some_and(|s| s.contains("Settee"));
    let text = resp.into_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    // Clients such as couchdb-python decode only what is labelled JSON (the
    // same helper also talks to PouchDB Server, which labels it text/plain).
    if settee && !json.is_null() {
        assert_eq!(content_type, "application/json", "{status} {text}");
    }
    (status, json)
}

/// Runs a client program on a script under `e2e/` (`js/x.mjs` with node,
/// `py/x.py` with python3) and fails with its output if it fails.
pub fn run_client(program: &str, script: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .arg(repo_root().join("e2e").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
}

/// Sends one request with its target exactly as given, as the admin (HTTP
/// clients' URL types resolve `%2E` segments first), and answers the status
/// and body text.
pub fn raw_request(port: u16, method: &str, target: &str, body: &str) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic(ADMIN, PASSWORD),
        body.len()
    );
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(body.as_bytes()).unwrap();
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut out = vec![0; length];
    reader.read_exact(&mut out).unwrap();
    (status, String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_encoding() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic("a", "b"), "Basic YTpi");
    }

    #[test]
    fn config_escapes_values() {
        let c = workerd_config(
            1234,
            Path::new("/tmp/d"),
            None,
            &[("K".into(), "a\"b".into())],
        );
        assert!(c.contains(r#"(name = "K", text = "a\"b")"#));
        assert!(c.contains("127.0.0.1:1234"));
        assert!(!c.contains("ASSETS"));
        let c = workerd_config(1234, Path::new("/tmp/d"), Some(Path::new("/x/fx")), &[]);
        assert!(c.contains(r#"(name = "ASSETS", service = "assets")"#));
        assert!(c.contains(r#"(name = "assets", disk = (path = "/x/fx"))"#));
    }
}
