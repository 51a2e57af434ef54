#!/usr/bin/env node
// `make bench`: measures Settee against PouchDB Server (LevelDB) and against
// a "platform ceiling" Worker (bench/ceiling/) on the same workerd.
//
// Each server is started on its own free loopback port with a fresh temp
// directory, gets every scenario with the same parameters, and is stopped (by
// PID) before the next one starts, so the three never compete for the CPU.
// Everything goes to 127.0.0.1 and every step is bounded in time and count.
//
// Run from the repository root after `. .settee/tools.env` (for WORKERD_BIN)
// and `make build` (for router/build/). Installs what is missing first:
// bench/node_modules (npm) and wrk (apt-get).
//
// Environment knobs (defaults are what BENCHMARKS.md reports):
//   BENCH_QUICK=1   short runs (1 round, 2 s wrk, 10k docs) to check the harness
//   BENCH_ROUNDS=N  rounds (default 3; each starts every server afresh)
//   BENCH_KEEP=1    keep the servers' temp directories (and their logs)
//   BENCH_ONLY=search  only the full-text search scenario, on Settee
//   BENCH_ONLY=replication  only the replication scenarios
//
// Results: a Markdown table on stdout and, with the raw numbers, in
// bench/results/ (git-ignored; not written by BENCH_QUICK runs).

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const QUICK = process.env.BENCH_QUICK === "1";

const PARAMS = {
  wrk: {
    threads: 2,
    connections: 32,
    seconds: QUICK ? 2 : 10,
    // Discarded run before each measured one, so the JIT, wasm tiering and
    // connection set-up are not measured.
    warmupSeconds: QUICK ? 1 : 3,
    timeout: "5s",
  },
  getDocs: 1000,
  bulkDocs: QUICK ? 10_000 : 100_000,
  bulkBatch: 1000,
  pageSize: 10_000,
  // Every server gets this many fresh starts, interleaved (ceiling, Settee,
  // PouchDB, ceiling, ...) so that drift in the machine's speed hits all
  // three alike; each figure reported is the median over the rounds.
  rounds: Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3)),
  // _all_docs and _changes only read, so they are repeated; the median counts.
  readRepeats: 3,
  // _find queries timed: full scans (slow), indexed (fast).
  findScans: QUICK ? 2 : 5,
  findQueries: QUICK ? 10 : 50,
  // Reduce queries timed, each over every row of the view.
  viewQueries: QUICK ? 2 : 3,
  searchQueries: QUICK ? 3 : 20,
  // Distinct users whose first login is timed (password hashing).
  logins: QUICK ? 5 : 20,
  // Attachment uploads then downloads of random (incompressible) bytes.
  attachments: [
    { mb: 1, count: QUICK ? 5 : 20 },
    { mb: 20, count: QUICK ? 2 : 5 },
  ],
  // One-shot replication of this many docs (seeded with _bulk_docs first).
  replicationDocs: QUICK ? 10_000 : 100_000,
  // Continuous _changes listeners, and the writes whose delivery to all of
  // them is timed.
  listeners: QUICK ? 200 : 1000,
  fanoutWrites: QUICK ? 3 : 10,
  requestTimeoutMs: 120_000,
  // A view's first query builds its index: PouchDB Server takes minutes
  // over 100,000 docs (under Node's fetch limit of 5 minutes for headers).
  viewBuildTimeoutMs: 290_000,
  startTimeoutMs: 30_000,
  // Databases whose first request after a restart is timed.
  coldDbs: QUICK ? 3 : 10,
  // The whole run, servers' start-up included.
  overallTimeoutMs: 60 * 60_000,
};

const ADMIN = "admin";
const PASSWORD = `bench-${randomBytes(9).toString("base64url")}`;
const AUTH = `Basic ${Buffer.from(`${ADMIN}:${PASSWORD}`).toString("base64")}`;

// ---------------------------------------------------------------- helpers

function log(msg) {
  process.stderr.write(`==> ${msg}\n`);
}

function fail(msg) {
  throw new Error(msg);
}

function onPath(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal})`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pad = (n, w) => String(n).padStart(w, "0");

// ---------------------------------------------------------------- installs

function ensureTools() {
  // bench/node_modules: reinstalled when package.json or the lockfile is
  // newer than npm's record of the last install.
  const installed = path.join(BENCH, "node_modules/.package-lock.json");
  const stale =
    !fs.existsSync(installed) ||
    ["package.json", "package-lock.json"].some((f) => {
      const p = path.join(BENCH, f);
      return fs.existsSync(p) && fs.statSync(p).mtimeMs > fs.statSync(installed).mtimeMs;
    });
  if (stale) {
    log("installing bench/node_modules (pouchdb-server)");
    const lock = fs.existsSync(path.join(BENCH, "package-lock.json"));
    run("npm", [lock ? "ci" : "install", "--prefix", BENCH, "--no-audit", "--no-fund"]);
  }
  if (!onPath("wrk")) {
    log("installing wrk (apt-get)");
    const apt = (...args) =>
      process.getuid?.() === 0 ? run("apt-get", args) : run("sudo", ["apt-get", ...args]);
    apt("update", "-qq");
    apt("install", "-y", "-qq", "wrk");
  }
  const workerd =
    process.env.WORKERD_BIN ?? path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
  if (!fs.existsSync(workerd)) fail(`workerd not found at ${workerd}: run \`make setup\``);
  for (const f of ["index.js", "index_bg.wasm"]) {
    if (!fs.existsSync(path.join(ROOT, "router/build", f))) {
      fail(`router/build/${f} missing: run \`make build\` first`);
    }
  }
  return { workerd };
}

/**
 * The Settee bundle, read once at the start so that the version reported is
 * the one measured even if router/build/ is rebuilt during the run.
 */
function readBundle() {
  const files = {};
  for (const f of ["index.js", "index_bg.wasm"]) {
    files[f] = fs.readFileSync(path.join(ROOT, "router/build", f));
  }
  const built = fs.statSync(path.join(ROOT, "router/build/index_bg.wasm")).mtime.toISOString();
  const sha = createHash("sha256").update(files["index_bg.wasm"]).digest("hex").slice(0, 12);
  return { files, description: `built ${built}, index_bg.wasm sha256 ${sha}` };
}

function versions(workerd, bundle) {
  const out = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0].trim();
  };
  const pkg = JSON.parse(
    fs.readFileSync(path.join(BENCH, "node_modules/pouchdb-server/package.json"), "utf8"),
  );
  return {
    workerd: out(workerd, ["--version"]),
    pouchdbServer: pkg.version,
    wrk: out("wrk", ["--version"]).split(" Copyright")[0],
    node: process.version,
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}`,
    bundle: bundle.description,
  };
}

// ---------------------------------------------------------------- servers

/** Every child still running, so that any exit path can stop it. */
const running = new Set();

class Server {
  constructor({ name, child, dir, base, headers, logFile }) {
    Object.assign(this, { name, child, dir, base, headers, logFile });
    this.exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve(code ?? sig)));
    running.add(this);
  }

  /** Polls `path` until any HTTP answer; fails if the process exits first. */
  async waitUp(probe) {
    const deadline = Date.now() + PARAMS.startTimeoutMs;
    let gone = false;
    this.exited.then(() => (gone = true));
    while (Date.now() < deadline && !gone) {
      try {
        const r = await fetch(this.base + probe, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status < 500) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    fail(`${this.name} did not come up; log:\n${this.logTail()}`);
  }

  logTail() {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /**
   * SIGTERM to the PID we spawned (workerd and node both exit on it), SIGKILL
   * if it is still there after 5 s. Its temp dir is removed unless
   * BENCH_KEEP=1 or `keep`.
   */
  async stop(keep = process.env.BENCH_KEEP === "1") {
    if (!running.has(this)) return;
    running.delete(this);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        this.child.kill("SIGKILL");
        await this.exited;
      }
    }
    if (keep) log(`kept ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function stopAllSync() {
  for (const s of running) {
    try {
      s.child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
}

function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `settee-bench-${name}-`));
}

function capnpString(s) {
  return JSON.stringify(s); // paths and ASCII secrets: JSON escaping is capnp's
}

function spawnLogged(cmd, args, dir, opts = {}) {
  const logFile = path.join(dir, "server.log");
  const fd = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], ...opts });
  fs.closeSync(fd);
  return { child, logFile };
}

/** Settee: the built bundle on workerd, configured as e2e/src/lib.rs does. */
async function startSettee(workerd, bundle, dir = tempDir("settee")) {
  const port = await freePort();
  const data = path.join(dir, "data");
  fs.mkdirSync(data, { recursive: true });
  for (const [f, bytes] of Object.entries(bundle.files)) fs.writeFileSync(path.join(dir, f), bytes);
  const classes = ["DbActor", "CatalogActor", "ReplicatorActor"];
  const bindings = [
    ...[["DB", "DbActor"], ["CATALOG", "CatalogActor"], ["REPLICATOR", "ReplicatorActor"]].map(
      ([b, c]) => `(name = "${b}", durableObjectNamespace = "${c}")`,
    ),
    `(name = "COUCHDB_USER", text = ${capnpString(ADMIN)})`,
    `(name = "COUCHDB_PASSWORD", text = ${capnpString(PASSWORD)})`,
    `(name = "COUCHDB_SECRET", text = ${capnpString(randomBytes(16).toString("hex"))})`,
  ];
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "settee", worker = .settee),
    (name = "storage", disk = (path = ${capnpString(data)}, writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "settee")],
);

const settee :Workerd.Worker = (
  compatibilityDate = "2026-04-01",
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  globalOutbound = "internet",
  bindings = [
    ${bindings.join(",\n    ")}
  ],
  durableObjectNamespaces = [
    ${classes.map((c) => `(className = "${c}", uniqueKey = "settee-${c}", enableSql = true)`).join(",\n    ")}
  ],
  durableObjectStorage = (localDisk = "storage"),
);
`;
  fs.writeFileSync(path.join(dir, "settee.capnp"), config);
  const { child, logFile } = spawnLogged(
    workerd,
    ["serve", path.join(dir, "settee.capnp"), "--experimental"],
    dir,
  );
  const s = new Server({
    name: "Settee",
    child,
    dir,
    logFile,
    base: `http://127.0.0.1:${port}`,
    headers: { authorization: AUTH, "content-type": "application/json" },
  });
  await s.waitUp("/_up");
  return s;
}

/**
 * PouchDB Server on LevelDB. It gets the same admin as Settee (so both check
 * basic auth on every request) and log level "warning": by default it logs
 * every request to a file, which Settee does not do.
 */
async function startPouch(dir = tempDir("pouchdb")) {
  const port = await freePort();
  const config = {
    admins: { [ADMIN]: PASSWORD }, // hashed by pouchdb-server at start-up
    log: { file: path.join(dir, "couch.log"), level: "warning" },
  };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  const bin = path.join(BENCH, "node_modules/pouchdb-server/bin/pouchdb-server");
  const { child, logFile } = spawnLogged(
    process.execPath,
    [bin, "--host", "127.0.0.1", "--port", String(port), "--dir", path.join(dir, "dbs"),
      "--config", path.join(dir, "config.json"), "--no-stdout-logs"],
    dir,
    { cwd: dir }, // it writes log.txt and friends to its working directory
  );
  const s = new Server({
    name: "PouchDB Server",
    child,
    dir,
    logFile,
    base: `http://127.0.0.1:${port}`,
    headers: { authorization: AUTH, "content-type": "application/json" },
  });
  await s.waitUp("/");
  return s;
}

/** The ceiling Worker (bench/ceiling/) on the same workerd. */
function startCeiling(workerd) {
  return startCeilingWorker(workerd, "Ceiling", "ceiling", {
    "worker.js": ["ceiling/worker.js", "esModule"],
  });
}

/**
 * The same ceiling written with workers-rs (bench/ceiling-rs/, built by
 * `make bench`): what the Rust runtime layer Settee sits on costs by itself.
 */
function startCeilingRs(workerd) {
  return startCeilingWorker(workerd, "Rust ceiling", "ceiling-rs", {
    "index.js": ["ceiling-rs/build/index.js", "esModule"],
    "index_bg.wasm": ["ceiling-rs/build/index_bg.wasm", "wasm"],
  });
}

/**
 * A ceiling Worker on the same workerd, configured from
 * bench/ceiling/config.capnp.in: `modules` maps each module's name to its
 * file under bench/ and its capnp kind.
 */
async function startCeilingWorker(workerd, name, tag, modules) {
  const dir = tempDir(tag);
  const port = await freePort();
  const data = path.join(dir, "data");
  fs.mkdirSync(data);
  for (const [file, [source]] of Object.entries(modules)) {
    fs.copyFileSync(path.join(BENCH, source), path.join(dir, file));
  }
  const list = Object.entries(modules)
    .map(([file, [, kind]]) => `(name = "${file}", ${kind} = embed "${file}")`)
    .join(", ");
  const config = fs
    .readFileSync(path.join(BENCH, "ceiling/config.capnp.in"), "utf8")
    .replaceAll("@MODULES@", list)
    .replaceAll("@TAG@", tag)
    .replaceAll("@PORT@", String(port))
    .replaceAll("@DATA@", data);
  fs.writeFileSync(path.join(dir, "config.capnp"), config);
  const { child, logFile } = spawnLogged(
    workerd,
    ["serve", path.join(dir, "config.capnp"), "--experimental"],
    dir,
  );
  const s = new Server({
    name,
    child,
    dir,
    logFile,
    base: `http://127.0.0.1:${port}`,
    headers: { "content-type": "application/json" },
  });
  await s.waitUp("/k/probe");
  return s;
}

// ---------------------------------------------------------------- requests

/**
 * One request; returns the parsed JSON body, failing on a non-2xx status.
 * `timeoutMs` for the slow ones (view builds).
 */
async function call(server, method, urlPath, body, timeoutMs = PARAMS.requestTimeoutMs) {
  const r = await fetchOnce(server.base + urlPath, {
    method,
    headers: server.headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  if (r.status < 200 || r.status > 299) {
    fail(`${server.name}: ${method} ${urlPath} -> ${r.status} ${text.slice(0, 300)}`);
  }
  return text ? JSON.parse(text) : null;
}

/**
 * `fetch`, tried once more when the connection fails before any answer:
 * after wrk's load, workerd sometimes drops an idle keep-alive connection
 * that Node's pool then reuses (see BENCHMARKS.md on socket errors). Only
 * a request that got no response at all is repeated.
 */
async function fetchOnce(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (e?.name === "TimeoutError" || e?.name === "AbortError") throw e;
    log(`retrying ${init.method} ${url} after: ${e.cause?.code ?? e.message}`);
    return await fetch(url, init);
  }
}

/**
 * Runs wrk with bench/wrk/scenario.lua, a warm-up and then the measured run,
 * and sums up the latter: 2xx per second, status codes, socket errors.
 */
async function wrk(server, mode, prefix, arg) {
  const { threads, connections, timeout } = PARAMS.wrk;
  const once = (seconds, extra) =>
    new Promise((resolve, reject) => {
      const headers = Object.entries(server.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
      const args = [
        `-t${threads}`, `-c${connections}`, `-d${seconds}s`, "--timeout", timeout,
        ...headers, "-s", path.join(BENCH, "wrk/scenario.lua"), server.base,
        "--", mode, prefix, extra,
      ];
      const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      // wrk stops itself after -d; this only guards against a hang.
      const guard = setTimeout(() => child.kill("SIGKILL"), (seconds + 30) * 1000);
      child.on("close", (code) => { // "close": stdout is fully read
        clearTimeout(guard);
        const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
        if (code !== 0 || !line) return reject(new Error(`wrk failed (${code}):\n${out}`));
        resolve(JSON.parse(line.slice("BENCH_JSON ".length)));
      });
    });
  // The warm-up PUTs use their own ids, so the measured run's are all new.
  await once(PARAMS.wrk.warmupSeconds, mode === "put" ? "warm" : arg);
  const cpuBefore = processTicks(server.child.pid);
  const r = await once(PARAMS.wrk.seconds, arg);
  const cpuTicksUsed = processTicks(server.child.pid) - cpuBefore;
  const ok = Object.entries(r.statuses)
    .filter(([code]) => code.startsWith("2"))
    .reduce((n, [, c]) => n + c, 0);
  const e = r.errors;
  return {
    perSec: ok / (r.duration_us / 1e6),
    requests: r.requests,
    ok,
    statuses: r.statuses,
    socketErrors: e.connect + e.read + e.write + e.timeout,
    errors: e,
    p50ms: r.latency_us.p50 / 1000,
    p99ms: r.latency_us.p99 / 1000,
    // The server process's CPU time (all its threads) per request answered.
    cpuMsPerReq: (1000 * cpuTicksUsed) / CLK_TCK / Math.max(1, r.requests),
  };
}

// ---------------------------------------------------------------- scenarios

const PUT_DB = "bench-put";
const GET_DB = "bench-get";
const BULK_DB = "bench-bulk";
const getId = (i) => `get-${pad(i, 4)}`; // matches scenario.lua

function smallDoc(id, n) {
  return { _id: id, type: "bench", n, note: "a small JSON document" };
}

async function couchScenarios(server) {
  const res = {};
  for (const db of [PUT_DB, GET_DB, BULK_DB]) await call(server, "PUT", `/${db}`);

  log(`${server.name}: single-doc PUT`);
  res.put = await wrk(server, "put", `/${PUT_DB}/`, `run-${Date.now()}`);

  log(`${server.name}: single-doc GET`);
  const seed = Array.from({ length: PARAMS.getDocs }, (_, i) => smallDoc(getId(i), i));
  checkBulk(server, await call(server, "POST", `/${GET_DB}/_bulk_docs`, { docs: seed }), seed.length);
  res.get = await wrk(server, "get", `/${GET_DB}/`, String(PARAMS.getDocs));

  log(`${server.name}: _bulk_docs, ${PARAMS.bulkDocs} docs in batches of ${PARAMS.bulkBatch}`);
  // Bodies are serialised before the clock starts: only the server is timed.
  const bodies = [];
  for (let i = 0; i < PARAMS.bulkDocs; i += PARAMS.bulkBatch) {
    const docs = [];
    for (let j = i; j < Math.min(i + PARAMS.bulkBatch, PARAMS.bulkDocs); j++) {
      docs.push(smallDoc(`bulk-${pad(j, 7)}`, j));
    }
    bodies.push([docs.length, JSON.stringify({ docs })]);
  }
  let t0 = performance.now();
  for (const [n, body] of bodies) {
    checkBulk(server, await call(server, "POST", `/${BULK_DB}/_bulk_docs`, body), n);
  }
  res.bulk = { perSec: PARAMS.bulkDocs / ((performance.now() - t0) / 1000) };

  log(`${server.name}: _all_docs, ${PARAMS.readRepeats} passes`);
  const allDocs = [];
  for (let rep = 0; rep < PARAMS.readRepeats; rep++) {
    t0 = performance.now();
    const rows = await readAllDocs(server);
    const secs = (performance.now() - t0) / 1000;
    if (rows !== PARAMS.bulkDocs) fail(`${server.name}: _all_docs gave ${rows} rows, not ${PARAMS.bulkDocs}`);
    allDocs.push(rows / secs);
  }
  res.allDocs = { perSec: median(allDocs), passes: allDocs };

  log(`${server.name}: _changes, ${PARAMS.readRepeats} passes`);
  const changes = [];
  for (let rep = 0; rep < PARAMS.readRepeats; rep++) {
    t0 = performance.now();
    const rows = await readChanges(server);
    const secs = (performance.now() - t0) / 1000;
    if (rows !== PARAMS.bulkDocs) fail(`${server.name}: _changes gave ${rows} rows, not ${PARAMS.bulkDocs}`);
    changes.push(rows / secs);
  }
  res.changes = { perSec: median(changes), passes: changes };

  log(`${server.name}: _find, unindexed and indexed`);
  Object.assign(res, await findScenarios(server));

  log(`${server.name}: JavaScript views: build, _count, _sum, grouped`);
  Object.assign(res, await viewScenarios(server));

  log(`${server.name}: full-text search over ${PARAMS.bulkDocs} docs`);
  Object.assign(res, await searchScenarios(server));

  log(`${server.name}: ${PARAMS.logins} cookie logins of distinct users`);
  res.login = await logins(server);

  log(`${server.name}: attachment upload and download`);
  Object.assign(res, await attachmentScenarios(server));

  log(`${server.name}: _changes fan-out to ${PARAMS.listeners} continuous listeners`);
  res.fanout = await fanout(server);

  log(`${server.name}: partition queries, alone and beside ${PARAMS.bulkDocs} other docs`);
  Object.assign(res, await partitionScenarios(server));
  return res;
}

const PART_DB = "bench-parts";

/**
 * Partition queries: a view query and a `_find` reading all of one
 * 100-document partition, timed while it is the database's only one and
 * again after 100 other partitions got `bulkDocs` documents between them.
 * Equal latencies mean a partition query's cost does not grow with the rest
 * of the database. The first queries of each pass bring the indexes up to
 * date, untimed. A server without partitioned databases (PouchDB Server
 * creates an ordinary one) is skipped.
 *
 * The two queries and a control (a GET of one of the partition's documents,
 * whose cost no partition changes) take turns, so whatever else the server
 * does meanwhile (after 100,000 writes: storage and garbage collection,
 * stalls of tens of milliseconds) falls on all three alike. Each is
 * reported as its median latency, with the slowest beside it.
 */
async function partitionScenarios(server) {
  await call(server, "PUT", `/${PART_DB}?partitioned=true`);
  const props = (await call(server, "GET", `/${PART_DB}`)).props ?? {};
  if (!props.partitioned) return {};
  const hot = Array.from({ length: 100 }, (_, i) => ({ _id: `hot:${pad(i, 3)}`, type: "bench", n: i }));
  checkBulk(server, await call(server, "POST", `/${PART_DB}/_bulk_docs`, { docs: hot }), hot.length);
  await call(server, "PUT", `/${PART_DB}/_design/p`, { views: { by_n: { map: "function (doc) { emit(doc.n, null); }" } } });
  await call(server, "POST", `/${PART_DB}/_index`, { index: { fields: ["n"] }, ddoc: "pn", name: "n" });
  const view = `/${PART_DB}/_partition/hot/_design/p/_view/by_n`;
  const find = `/${PART_DB}/_partition/hot/_find`;
  const selector = { selector: { n: { $gte: 0 } }, limit: 100 };
  const check = (what, got) => {
    if (got !== hot.length) fail(`${server.name}: partition ${what} gave ${got} rows, not ${hot.length}`);
  };
  const queries = {
    View: async () => check("view", (await call(server, "GET", view)).rows.length),
    Find: async () => check("_find", (await call(server, "POST", find, selector)).docs.length),
    Doc: async () => {
      if ((await call(server, "GET", `/${PART_DB}/hot:001`)).n !== 1) fail(`${server.name}: wrong hot:001`);
    },
  };
  const pass = async (when) => {
    check("view", (await call(server, "GET", view, undefined, PARAMS.viewBuildTimeoutMs)).rows.length);
    check("_find", (await call(server, "POST", find, selector, PARAMS.viewBuildTimeoutMs)).docs.length);
    const ms = Object.fromEntries(Object.keys(queries).map((k) => [k, []]));
    for (let i = 0; i < PARAMS.findQueries; i++) {
      for (const [k, q] of Object.entries(queries)) {
        const t0 = performance.now();
        await q();
        ms[k].push(performance.now() - t0);
      }
    }
    return Object.fromEntries(
      Object.entries(ms).map(([k, xs]) => [`part${k}${when}`, { ms: median(xs), maxMs: Math.max(...xs) }]),
    );
  };
  const alone = await pass("Alone");
  const perPartition = PARAMS.bulkDocs / 100;
  for (let i = 0; i < PARAMS.bulkDocs; i += PARAMS.bulkBatch) {
    const docs = [];
    for (let j = i; j < Math.min(i + PARAMS.bulkBatch, PARAMS.bulkDocs); j++) {
      docs.push({ _id: `cold${pad(Math.floor(j / perPartition), 3)}:${pad(j, 7)}`, type: "bench", n: j });
    }
    checkBulk(server, await call(server, "POST", `/${PART_DB}/_bulk_docs`, { docs }), docs.length);
  }
  return { ...alone, ...(await pass("Beside")) };
}

/**
 * Cold starts: `coldDbs` databases of one document each are written, the
 * server is stopped and started again on the same data, and each
 * database's first GET is timed (for Settee its Durable Object is not
 * loaded yet; for PouchDB Server its LevelDB is not open), then a second
 * GET of it as the warm control. The restart (process start until the
 * first answer, polled every 100 ms) is reported too.
 */
async function coldStartScenarios(start) {
  let server = await start();
  for (let i = 0; i < PARAMS.coldDbs; i++) {
    await call(server, "PUT", `/bench-cold-${i}`);
    await call(server, "PUT", `/bench-cold-${i}/doc`, smallDoc("doc", i));
  }
  const dir = server.dir;
  await server.stop(true);
  const t0 = performance.now();
  server = await start(dir);
  const restartMs = performance.now() - t0;
  const first = [];
  const warm = [];
  try {
    for (let i = 0; i < PARAMS.coldDbs; i++) {
      for (const times of [first, warm]) {
        const t = performance.now();
        const doc = await call(server, "GET", `/bench-cold-${i}/doc`);
        times.push(performance.now() - t);
        if (doc.n !== i) fail(`${server.name}: bench-cold-${i}/doc came back as ${JSON.stringify(doc)}`);
      }
    }
  } finally {
    await server.stop();
  }
  const summary = (xs) => ({ ms: median(xs), maxMs: Math.max(...xs) });
  return {
    coldRestart: summary([restartMs]),
    coldFirstGet: summary(first),
    coldWarmGet: summary(warm),
  };
}

const ATT_DB = "bench-att";

/**
 * Standalone attachment PUTs (each a new document) and GETs of the same,
 * one at a time, in MB/s; bytes are checked on the way back.
 */
async function attachmentScenarios(server) {
  await call(server, "PUT", `/${ATT_DB}`);
  const out = {};
  for (const { mb, count } of PARAMS.attachments) {
    const data = randomBytes(mb << 20);
    const headers = { ...server.headers, "content-type": "application/octet-stream" };
    let t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const r = await fetchOnce(`${server.base}/${ATT_DB}/mb${mb}-${i}/blob.bin`, {
        method: "PUT", headers, body: data, signal: AbortSignal.timeout(PARAMS.requestTimeoutMs),
      });
      const text = await r.text();
      if (r.status !== 201) fail(`${server.name}: attachment PUT -> ${r.status} ${text.slice(0, 200)}`);
    }
    out[`attUp${mb}`] = { perSec: (mb * count) / ((performance.now() - t0) / 1000) };
    t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const r = await fetchOnce(`${server.base}/${ATT_DB}/mb${mb}-${i}/blob.bin`, {
        headers: server.headers, signal: AbortSignal.timeout(PARAMS.requestTimeoutMs),
      });
      const back = Buffer.from(await r.arrayBuffer());
      if (r.status !== 200 || !back.equals(data)) fail(`${server.name}: attachment GET -> ${r.status}, ${back.length} bytes`);
    }
    out[`attDown${mb}`] = { perSec: (mb * count) / ((performance.now() - t0) / 1000) };
  }
  return out;
}

/**
 * Opens PARAMS.listeners continuous `_changes` feeds (since=now), then makes
 * PARAMS.fanoutWrites writes, one at a time, and times each from the write
 * until the last listener has its row. Reports the median of those times
 * (`ms`) and its inverse as `perSec` (deliveries to all, per second).
 */
async function fanout(server) {
  const db = "bench-fanout";
  await call(server, "PUT", `/${db}`);
  const waiting = new Map(); // doc id -> { left, resolve }
  const controller = new AbortController();
  const listen = async () => {
    // identity: PouchDB Server gzips a feed for clients that accept it, and
    // its compressor holds the rows back until the feed ends.
    const r = await fetch(`${server.base}/${db}/_changes?feed=continuous&since=now&heartbeat=5000&timeout=600000`, {
      headers: { ...server.headers, "accept-encoding": "identity" }, signal: controller.signal,
    });
    if (r.status !== 200) fail(`${server.name}: continuous _changes -> ${r.status}`);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            const w = waiting.get(JSON.parse(line).id);
            if (w && --w.left === 0) w.resolve(performance.now());
          }
        }
      } catch {
        // aborted at the end
      }
    })();
  };
  // Connect in groups so the servers' accept queues are not the test.
  for (let i = 0; i < PARAMS.listeners; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, PARAMS.listeners - i) }, listen));
  }
  await sleep(1000);
  const times = [];
  for (let i = 0; i < PARAMS.fanoutWrites; i++) {
    const id = `fan-${i}`;
    const done = new Promise((resolve) => waiting.set(id, { left: PARAMS.listeners, resolve }));
    const t0 = performance.now();
    await call(server, "PUT", `/${db}/${id}`, { i });
    const all = await Promise.race([done, sleep(30_000).then(() => NaN)]);
    if (Number.isNaN(all)) fail(`${server.name}: fan-out: ${waiting.get(id).left} listeners never got ${id}`);
    times.push(all - t0);
  }
  controller.abort();
  const ms = median(times);
  return { perSec: 1000 / ms, ms };
}

/**
 * `_find` over the _bulk_docs database: an equality + range selector, first
 * with no index (a full scan), then with a JSON index on [type, n] and a
 * sort it serves. The first indexed query builds the index and is timed on
 * its own. Reports queries/s and, where the server gives execution stats,
 * keys or docs examined per result.
 */
async function findScenarios(server) {
  const lo = Math.floor(PARAMS.bulkDocs / 2);
  const selector = { type: "bench", n: { $gte: lo, $lt: lo + 100 } };
  const time = async (body, n) => {
    let examined = NaN;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const r = await call(server, "POST", `/${BULK_DB}/_find`, body);
      if (r.docs.length !== 100) fail(`${server.name}: _find returned ${r.docs.length} docs, not 100`);
      const st = r.execution_stats;
      if (st) examined = Math.max(st.total_keys_examined ?? 0, st.total_docs_examined ?? 0) / r.docs.length;
    }
    return { perSec: n / ((performance.now() - t0) / 1000), examined };
  };
  const out = {};
  out.findScan = await time({ selector, limit: 100, execution_stats: true }, PARAMS.findScans);
  const indexed = { selector, sort: ["type", "n"], limit: 100, execution_stats: true };
  // Creating the index and its first query are timed together: servers
  // differ in which of the two builds it (PouchDB Server in POST /_index).
  const t0 = performance.now();
  await call(server, "POST", `/${BULK_DB}/_index`, { index: { fields: ["type", "n"] }, name: "type-n", ddoc: "bench" });
  await call(server, "POST", `/${BULK_DB}/_find`, indexed);
  out.indexBuild = { perSec: PARAMS.bulkDocs / ((performance.now() - t0) / 1000) };
  out.findIndexed = await time(indexed, PARAMS.findQueries);
  return out;
}

/**
 * JavaScript views over the _bulk_docs database: the first query of a new
 * design document builds the index (docs/s through the map function); then
 * `_count` and `_sum` over every row, and a grouped `_count` (1,000
 * groups), each repeated and reported as queries/s.
 */
async function viewScenarios(server) {
  const ddoc = {
    views: {
      by_n: { map: "function (doc) { if (doc.type === 'bench') emit([doc.n % 1000, doc.n], doc.n); }", reduce: "_sum" },
      count: { map: "function (doc) { if (doc.type === 'bench') emit([doc.n % 1000, doc.n], 1); }", reduce: "_count" },
    },
  };
  await call(server, "PUT", `/${BULK_DB}/_design/views`, ddoc);
  const out = {};
  let t0 = performance.now();
  const first = await call(server, "GET", `/${BULK_DB}/_design/views/_view/by_n?limit=1&reduce=false`, undefined, PARAMS.viewBuildTimeoutMs);
  out.viewBuild = { perSec: PARAMS.bulkDocs / ((performance.now() - t0) / 1000) };
  if (first.total_rows !== PARAMS.bulkDocs) fail(`${server.name}: view has ${first.total_rows} rows`);
  // Builds the second view.
  await call(server, "GET", `/${BULK_DB}/_design/views/_view/count?limit=1`, undefined, PARAMS.viewBuildTimeoutMs);
  const time = async (url, check) => {
    const n = PARAMS.viewQueries;
    t0 = performance.now();
    for (let i = 0; i < n; i++) check(await call(server, "GET", url));
    return { perSec: n / ((performance.now() - t0) / 1000) };
  };
  const total = (PARAMS.bulkDocs * (PARAMS.bulkDocs - 1)) / 2;
  out.viewCount = await time(`/${BULK_DB}/_design/views/_view/count`, (r) => {
    if (r.rows[0].value !== PARAMS.bulkDocs) fail(`${server.name}: _count gave ${JSON.stringify(r.rows)}`);
  });
  out.viewSum = await time(`/${BULK_DB}/_design/views/_view/by_n`, (r) => {
    if (r.rows[0].value !== total) fail(`${server.name}: _sum gave ${JSON.stringify(r.rows)}`);
  });
  out.viewGroup = await time(`/${BULK_DB}/_design/views/_view/count?group_level=1`, (r) => {
    if (r.rows.length !== Math.min(1000, PARAMS.bulkDocs)) fail(`${server.name}: ${r.rows.length} groups`);
  });
  return out;
}

const SEARCH_DB = "bench-search";
const WORDS = ("apple river stone cloud forest light music paper glass winter summer ocean bridge garden " +
  "silver window market castle dragon engine planet rocket island valley shadow thunder velvet " +
  "harbor lantern meadow orchard pepper quartz saddle timber violet walnut yellow zephyr amber " +
  "beacon canyon desert ember falcon glacier hollow iris jungle kettle lemon marble nectar olive").split(" ");

/** Document `i` of the search corpus: six words drawn by a seeded xorshift. */
function searchDoc(i) {
  let x = (i + 1) * 2654435761 >>> 0 || 1;
  const words = [];
  for (let k = 0; k < 6; k++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    words.push(WORDS[x % WORDS.length]);
  }
  return { _id: `s-${pad(i, 7)}`, text: words.join(" "), n: i };
}

/**
 * The queries timed, each with its reference: whether a document matches,
 * decided by scanning the generated corpus (the standard analyzer keeps
 * these lower-case ASCII words as they are).
 */
const SEARCH_QUERIES = [
  ["one term", "river", (w) => w.includes("river")],
  ["two terms, AND", "river AND stone", (w) => w.includes("river") && w.includes("stone")],
  ["two terms, OR", "river OR stone", (w) => w.includes("river") || w.includes("stone")],
  ["phrase", '"river stone"', (w) => w.some((x, k) => x === "river" && w[k + 1] === "stone")],
  ["prefix", "riv*", (w) => w.some((x) => x.startsWith("riv"))],
  ["term NOT term", "river -stone", (w) => w.includes("river") && !w.includes("stone")],
  ["term AND numeric range", "river AND n:[0 TO 9999]", (w, n) => w.includes("river") && n <= 9999],
];

/**
 * Full-text search (`_search`) over `bulkDocs` documents of six words:
 * the index build (the first query, docs/s) and each query's latency
 * (limit 25, median of `searchQueries`), with the hit count checked
 * against a scan of the corpus. A server without `_search` (PouchDB
 * Server) is skipped.
 */
async function searchScenarios(server) {
  await call(server, "PUT", `/${SEARCH_DB}`);
  const docs = Array.from({ length: PARAMS.bulkDocs }, (_, i) => searchDoc(i));
  for (let i = 0; i < docs.length; i += PARAMS.bulkBatch) {
    const batch = docs.slice(i, i + PARAMS.bulkBatch);
    checkBulk(server, await call(server, "POST", `/${SEARCH_DB}/_bulk_docs`, { docs: batch }), batch.length);
  }
  await call(server, "PUT", `/${SEARCH_DB}/_design/s`, {
    indexes: { text: { index: "function (doc) { index('default', doc.text); index('n', doc.n); }" } },
  });
  const url = (q, limit) => `/${SEARCH_DB}/_design/s/_search/text?q=${encodeURIComponent(q)}&limit=${limit}`;
  const t0 = performance.now();
  const probe = await fetchOnce(`${server.base}${url("river", 0)}`, {
    method: "GET",
    headers: server.headers,
    signal: AbortSignal.timeout(PARAMS.viewBuildTimeoutMs),
  });
  await probe.text();
  if (probe.status !== 200) {
    log(`${server.name}: no _search (${probe.status}); skipped`);
    return {};
  }
  const out = { searchBuild: { perSec: PARAMS.bulkDocs / ((performance.now() - t0) / 1000) }, searchQueries: {} };
  const split = docs.map((d) => [d.text.split(" "), d.n]);
  for (const [name, q, matches] of SEARCH_QUERIES) {
    const want = split.filter(([w, n]) => matches(w, n)).length;
    const times = [];
    let got;
    for (let i = 0; i < PARAMS.searchQueries; i++) {
      const t = performance.now();
      got = await call(server, "GET", url(q, 25));
      times.push(performance.now() - t);
    }
    if (got.total_rows !== want) fail(`${server.name}: ${q} gave ${got.total_rows} hits, the corpus scan ${want}`);
    out.searchQueries[name] = { q, hits: want, ms: median(times), maxMs: Math.max(...times) };
  }
  return out;
}

/**
 * POST /_session for users created just before, each once, so every login
 * pays the server's password hashing (no cached verification).
 * `perSec` is logins per second of one client; `maxMs` the slowest login.
 */
async function logins(server) {
  const n = PARAMS.logins;
  for (let i = 0; i < n; i++) {
    const user = { _id: `org.couchdb.user:bench${i}`, type: "user", name: `bench${i}`, roles: [], password: `pw-${i}` };
    const r = await fetchOnce(`${server.base}/_users/${encodeURIComponent(user._id)}`, {
      method: "PUT", headers: server.headers, body: JSON.stringify(user), signal: AbortSignal.timeout(PARAMS.requestTimeoutMs),
    });
    if (r.status !== 201) {
      log(`${server.name}: cannot create users (${r.status}); no login figures`);
      return { perSec: NaN, maxMs: NaN };
    }
    await r.text();
  }
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetchOnce(`${server.base}/_session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: `bench${i}`, password: `pw-${i}` }),
      signal: AbortSignal.timeout(PARAMS.requestTimeoutMs),
    });
    await r.text();
    if (r.status !== 200) fail(`${server.name}: login of bench${i} -> ${r.status}`);
    times.push(performance.now() - t0);
  }
  const total = times.reduce((a, b) => a + b, 0);
  return { perSec: n / (total / 1000), maxMs: Math.max(...times) };
}

/** Fills `db` on `server` with PARAMS.replicationDocs small docs. */
async function seed(server, db) {
  await call(server, "PUT", `/${db}`);
  for (let i = 0; i < PARAMS.replicationDocs; i += PARAMS.bulkBatch) {
    const docs = [];
    for (let j = i; j < Math.min(i + PARAMS.bulkBatch, PARAMS.replicationDocs); j++) {
      docs.push(smallDoc(`rep-${pad(j, 7)}`, j));
    }
    checkBulk(server, await call(server, "POST", `/${db}/_bulk_docs`, { docs }), docs.length);
  }
}

/** The database URL another server uses to reach `db` on `server`. */
function remoteUrl(server, db) {
  const u = new URL(`${server.base}/${db}`);
  u.username = ADMIN;
  u.password = PASSWORD;
  return u.toString();
}

/**
 * One-shot `POST /_replicate` on `runner` from `source` to the new database
 * `target` on `runner` (by name for Settee, whose replicator reaches its own
 * databases directly; by URL for PouchDB Server), timed until it answers;
 * docs/s, with the target's doc count checked.
 */
async function replicate(runner, source, target) {
  const t0 = performance.now();
  const to = runner.name === "Settee" ? target : remoteUrl(runner, target);
  const r = await call(runner, "POST", "/_replicate", { source, target: to, create_target: true });
  const secs = (performance.now() - t0) / 1000;
  if (!r.ok) fail(`${runner.name}: _replicate: ${JSON.stringify(r).slice(0, 300)}`);
  const info = await call(runner, "GET", `/${target}`);
  if (info.doc_count !== PARAMS.replicationDocs) fail(`${runner.name}: ${target} has ${info.doc_count} docs`);
  return { perSec: PARAMS.replicationDocs / secs };
}

/**
 * Replication, with both servers up at once: Settee→Settee (two databases
 * of one server), PouchDB Server→Settee (Settee's replicator pulling over
 * HTTP), and PouchDB Server→PouchDB Server for comparison.
 */
async function replicationScenarios(workerd, bundle) {
  const settee = await startSettee(workerd, bundle);
  const pouch = await startPouch();
  try {
    log(`replication: seeding ${PARAMS.replicationDocs} docs on each server`);
    await seed(settee, "rep-src");
    await seed(pouch, "rep-src");
    log("replication: Settee -> Settee");
    const setteeToSettee = await replicate(settee, "rep-src", "rep-dst");
    log("replication: PouchDB Server -> Settee");
    const pouchToSettee = await replicate(settee, remoteUrl(pouch, "rep-src"), "rep-from-pouch");
    log("replication: PouchDB Server -> PouchDB Server");
    const pouchToPouch = await replicate(pouch, remoteUrl(pouch, "rep-src"), "rep-dst");
    return { setteeToSettee, pouchToSettee, pouchToPouch };
  } finally {
    await settee.stop();
    await pouch.stop();
  }
}

/** A _bulk_docs answer must have one ok row per doc. */
function checkBulk(server, rows, n) {
  const bad = Array.isArray(rows) ? rows.filter((r) => !r.ok || r.error) : [rows];
  if (!Array.isArray(rows) || rows.length !== n || bad.length) {
    fail(`${server.name}: _bulk_docs: ${bad.length} bad rows, e.g. ${JSON.stringify(bad[0])}`);
  }
}

/** Pages through _all_docs with limit + startkey/skip=1; returns the row count. */
async function readAllDocs(server) {
  let total = 0;
  let query = `limit=${PARAMS.pageSize}`;
  for (let page = 0; page <= PARAMS.bulkDocs / PARAMS.pageSize + 1; page++) {
    const { rows } = await call(server, "GET", `/${BULK_DB}/_all_docs?${query}`);
    total += rows.length;
    if (rows.length < PARAMS.pageSize) return total;
    const last = encodeURIComponent(JSON.stringify(rows[rows.length - 1].key));
    query = `limit=${PARAMS.pageSize}&startkey=${last}&skip=1`;
  }
  fail(`${server.name}: _all_docs did not end`);
}

/** Pages through _changes with limit + since=last_seq; returns the row count. */
async function readChanges(server) {
  let total = 0;
  let since = "0";
  for (let page = 0; page <= PARAMS.bulkDocs / PARAMS.pageSize + 1; page++) {
    const q = `since=${encodeURIComponent(since)}&limit=${PARAMS.pageSize}`;
    const { results, last_seq } = await call(server, "GET", `/${BULK_DB}/_changes?${q}`);
    total += results.length;
    if (results.length < PARAMS.pageSize) return total;
    since = String(last_seq);
  }
  fail(`${server.name}: _changes did not end`);
}

async function ceilingScenarios(server) {
  log(`${server.name}: writes`);
  const put = await wrk(server, "put", "/k/", `run-${Date.now()}`);
  log(`${server.name}: reads`);
  // Seed the keys the GET scenario reads, 16 at a time.
  for (let i = 0; i < PARAMS.getDocs; i += 16) {
    await Promise.all(
      Array.from({ length: Math.min(16, PARAMS.getDocs - i) }, (_, j) =>
        call(server, "PUT", `/k/${getId(i + j)}`, smallDoc(getId(i + j), i + j)),
      ),
    );
  }
  const get = await wrk(server, "get", "/k/", String(PARAMS.getDocs));
  return { put, get };
}

// ---------------------------------------------------------------- CPU use

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/**
 * CPU time (in ticks) used so far by the whole machine and by this process
 * tree. Every server and wrk is a child that this process reaps, so once a
 * server has stopped its time is in our cutime/cstime.
 */
function cpuTicks() {
  const t = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const machine = t[0] + t[1] + t[2] + t[5] + t[6]; // user nice system irq softirq
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3
  const ours = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { machine, ours, at: performance.now() };
}

/** CPU time (in ticks, user + system) used so far by the process `pid`. */
function processTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3
  return Number(f[11]) + Number(f[12]);
}

/** Other processes' CPU use since `before`, in % of one core. */
function foreignCpu(before) {
  const now = cpuTicks();
  const ticks = now.machine - before.machine - (now.ours - before.ours);
  return Math.max(0, (100 * ticks) / CLK_TCK / ((now.at - before.at) / 1000));
}

// ---------------------------------------------------------------- report

function fmt(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);
}

/** A median latency and, in brackets, the slowest. */
function ms(r) {
  return `${r.ms.toFixed(2)} (${fmt(r.maxMs)})`;
}

function ratio(a, b) {
  return a && b ? `${(a / b).toFixed(2)}×` : "–";
}

/** Per server, per scenario: the rounds' results → median and the wrk totals. */
function aggregate(rounds) {
  const out = {};
  for (const key of Object.keys(rounds[0])) {
    const rs = rounds.map((r) => r[key]);
    if (key === "searchQueries") {
      out[key] = aggregateQueries(rs);
      continue;
    }
    const agg = { perSec: median(rs.map((r) => r.perSec)), rounds: rs.map((r) => r.perSec) };
    if (rs[0].statuses) {
      agg.requests = rs.reduce((n, r) => n + r.requests, 0);
      agg.ok = rs.reduce((n, r) => n + r.ok, 0);
      agg.statuses = {};
      agg.errors = { connect: 0, read: 0, write: 0, timeout: 0 };
      for (const r of rs) {
        for (const [c, n] of Object.entries(r.statuses)) agg.statuses[c] = (agg.statuses[c] ?? 0) + n;
        for (const k of Object.keys(agg.errors)) agg.errors[k] += r.errors[k];
      }
      agg.p50ms = median(rs.map((r) => r.p50ms));
      agg.p99ms = median(rs.map((r) => r.p99ms));
    }
    if (rs[0].maxMs !== undefined) agg.maxMs = Math.max(...rs.map((r) => r.maxMs));
    if (rs[0].ms !== undefined) agg.ms = median(rs.map((r) => r.ms));
    if (rs[0].cpuMsPerReq !== undefined) agg.cpuMsPerReq = median(rs.map((r) => r.cpuMsPerReq));
    if (rs[0].examined !== undefined) agg.examined = median(rs.map((r) => r.examined));
    out[key] = agg;
  }
  return out;
}

/** Per search query, over the rounds: the median latency, the slowest, the hits. */
function aggregateQueries(rounds) {
  return Object.fromEntries(Object.keys(rounds[0]).map((name) => {
    const rs = rounds.map((r) => r[name]);
    return [name, { q: rs[0].q, hits: rs[0].hits, ms: median(rs.map((r) => r.ms)), maxMs: Math.max(...rs.map((r) => r.maxMs)) }];
  }));
}

function report(settee, pouch, ceiling, ceilingRs, info, rep) {
  const rows = [
    ["single-doc PUT (docs/s)", settee.put, pouch.put, ceiling.put],
    ["single-doc GET (docs/s)", settee.get, pouch.get, ceiling.get],
    [`_bulk_docs (docs/s)`, settee.bulk, pouch.bulk],
    [`_all_docs (rows/s)`, settee.allDocs, pouch.allDocs],
    [`_changes (rows/s)`, settee.changes, pouch.changes],
    [`_find, no index (queries/s)`, settee.findScan, pouch.findScan],
    [`_index create + first _find (docs/s)`, settee.indexBuild, pouch.indexBuild],
    [`_find, indexed + sort (queries/s)`, settee.findIndexed, pouch.findIndexed],
    [`JS view build, first query (docs/s)`, settee.viewBuild, pouch.viewBuild],
    [`view _count over all rows (queries/s)`, settee.viewCount, pouch.viewCount],
    [`view _sum over all rows (queries/s)`, settee.viewSum, pouch.viewSum],
    [`view grouped _count, 1,000 groups (queries/s)`, settee.viewGroup, pouch.viewGroup],
    [`cookie logins (logins/s)`, settee.login, pouch.login],
    ...PARAMS.attachments.flatMap(({ mb }) => [
      [`attachment upload, ${mb} MB (MB/s)`, settee[`attUp${mb}`], pouch[`attUp${mb}`]],
      [`attachment download, ${mb} MB (MB/s)`, settee[`attDown${mb}`], pouch[`attDown${mb}`]],
    ]),
    [`_changes fan-out to ${PARAMS.listeners} listeners (writes delivered to all/s)`, settee.fanout, pouch.fanout],
  ];
  const main = [
    "| Scenario | Settee | PouchDB Server | Settee / PouchDB | Ceiling | Settee / Ceiling |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(([name, s, p, c]) =>
      `| ${name} | ${fmt(s.perSec)} | ${fmt(p.perSec)} | ${ratio(s.perSec, p.perSec)} | ` +
      `${c ? fmt(c.perSec) : "–"} | ${c ? `${((100 * s.perSec) / c.perSec).toFixed(0)}%` : "–"} |`),
  ];
  const fmtRep = (r) => fmt(median(r.map((x) => x.perSec)));
  const replication = [
    `| One-shot replication of ${PARAMS.replicationDocs} docs (docs/s) | rounds | median |`,
    "| --- | --- | ---: |",
    ...[
      ["Settee → Settee (Settee's replicator)", "setteeToSettee"],
      ["PouchDB Server → Settee (Settee's replicator)", "pouchToSettee"],
      ["PouchDB Server → PouchDB Server (PouchDB's replicator)", "pouchToPouch"],
    ].map(([name, k]) => `| ${name} | ${rep.map((r) => fmt(r[k].perSec)).join(" / ")} | ${fmtRep(rep.map((r) => r[k]))} |`),
  ];
  const partitions = settee.partViewAlone
    ? [
        `| Settee: reading one 100-doc partition, median ms (slowest) | alone | beside ${PARAMS.bulkDocs} docs in 100 other partitions | beside / alone, medians |`,
        "| --- | ---: | ---: | ---: |",
        ...[
          ["partitioned view, all 100 rows", settee.partViewAlone, settee.partViewBeside],
          ["partition `_find`, JSON index, 100 docs", settee.partFindAlone, settee.partFindBeside],
          ["control: GET of one of its documents", settee.partDocAlone, settee.partDocBeside],
        ].map(([name, a, b]) => `| ${name} | ${ms(a)} | ${ms(b)} | ${ratio(b.ms, a.ms)} |`),
      ]
    : [];
  const search = searchTable(settee);
  const cpu = (r) => (r ? r.cpuMsPerReq.toFixed(2) : "–");
  const pct = (a, b) => `${((100 * a) / b).toFixed(0)}%`;
  const rust = [
    "| Single-doc rates against the Rust ceiling (docs/s) | Settee | Rust ceiling | Settee / Rust ceiling | Ceiling | Rust ceiling / Ceiling |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...[["PUT", "put"], ["GET", "get"]].map(([name, k]) =>
      `| ${name} | ${fmt(settee[k].perSec)} | ${fmt(ceilingRs[k].perSec)} | ${pct(settee[k].perSec, ceilingRs[k].perSec)} | ` +
      `${fmt(ceiling[k].perSec)} | ${pct(ceilingRs[k].perSec, ceiling[k].perSec)} |`),
    ...[["PUT", "put"], ["GET", "get"]].map(([name, k]) =>
      `| server CPU per ${name}, ms | ${cpu(settee[k])} | ${cpu(ceilingRs[k])} | – | ${cpu(ceiling[k])} | – |`),
  ];
  const costs = [
    `| Cold start and CPU cost, ms (slowest in brackets) | Settee | PouchDB Server | Ceiling |`,
    "| --- | ---: | ---: | ---: |",
    `| restart on existing data until the first answer | ${ms(settee.coldRestart)} | ${ms(pouch.coldRestart)} | – |`,
    `| first GET of a database not loaded yet (median of ${PARAMS.coldDbs}) | ${ms(settee.coldFirstGet)} | ${ms(pouch.coldFirstGet)} | – |`,
    `| the same GET again (warm) | ${ms(settee.coldWarmGet)} | ${ms(pouch.coldWarmGet)} | – |`,
    `| server CPU per single-doc PUT (wrk) | ${cpu(settee.put)} | ${cpu(pouch.put)} | ${cpu(ceiling.put)} |`,
    `| server CPU per single-doc GET (wrk) | ${cpu(settee.get)} | ${cpu(pouch.get)} | ${cpu(ceiling.get)} |`,
  ];
  const perRound = [
    "| Scenario, each round | Settee | PouchDB Server | Ceiling |",
    "| --- | --- | --- | --- |",
    ...rows.map(([name, s, p, c]) =>
      `| ${name} | ${s.rounds.map(fmt).join(" / ")} | ${p.rounds.map(fmt).join(" / ")} | ` +
      `${c ? c.rounds.map(fmt).join(" / ") : "–"} |`),
  ];
  const detail = [
    "| wrk, all rounds | requests | 2xx | other statuses | socket errors (connect/read/write/timeout) | p50 ms | p99 ms |",
    "| --- | ---: | ---: | --- | --- | ---: | ---: |",
  ];
  for (const [name, r] of [
    ["Settee PUT", settee.put], ["Settee GET", settee.get],
    ["PouchDB Server PUT", pouch.put], ["PouchDB Server GET", pouch.get],
    ["Ceiling write", ceiling.put], ["Ceiling read", ceiling.get],
    ["Rust ceiling write", ceilingRs.put], ["Rust ceiling read", ceilingRs.get],
  ]) {
    const other = Object.entries(r.statuses).filter(([c]) => !c.startsWith("2"));
    const e = r.errors;
    detail.push(
      `| ${name} | ${r.requests} | ${r.ok} | ${other.length ? other.map(([c, n]) => `${c}: ${n}`).join(", ") : "none"} | ` +
      `${e.connect}/${e.read}/${e.write}/${e.timeout} | ${r.p50ms.toFixed(1)} | ${r.p99ms.toFixed(1)} |`,
    );
  }
  const w = PARAMS.wrk;
  const logins = `Slowest single login (password hashing included): Settee ${settee.login.maxMs.toFixed(0)} ms, ` +
    `PouchDB Server ${Number.isNaN(pouch.login.maxMs) ? "–" : `${pouch.login.maxMs.toFixed(0)} ms`}.`;
  const examined = (r) => (r && !Number.isNaN(r.examined) ? `${r.examined.toFixed(1)}` : "–");
  const find = `_find examined per returned doc: Settee ${examined(settee.findScan)} unindexed, ` +
    `${examined(settee.findIndexed)} indexed; PouchDB Server ${examined(pouch.findScan)} / ${examined(pouch.findIndexed)}.`;
  const fan = `Continuous-feed fan-out, write until the last of ${PARAMS.listeners} listeners has the row ` +
    `(median of ${PARAMS.fanoutWrites} writes): Settee ${settee.fanout.ms.toFixed(0)} ms, PouchDB Server ${pouch.fanout.ms.toFixed(0)} ms.`;
  const setup = [
    logins,
    fan,
    find,
    `Medians of ${info.rounds} rounds (each round: ceiling, Rust ceiling, Settee, PouchDB Server, each freshly started). ` +
      `wrk: ${w.threads} threads, ${w.connections} connections, ${w.seconds} s measured after a ${w.warmupSeconds} s warm-up; ` +
      `GETs of random ids among ${PARAMS.getDocs} docs. _bulk_docs: ${PARAMS.bulkDocs} docs in batches of ${PARAMS.bulkBatch}, ` +
      `sequential. _all_docs/_changes: pages of ${PARAMS.pageSize}, median of ${PARAMS.readRepeats} full passes.`,
    `Other processes' CPU use while each server ran (% of one core): ` +
      `${info.foreignCpu.map((r) => `${r.server} ${r.pct.toFixed(0)}%`).join(", ")}.`,
    `Versions: ${info.workerd}; pouchdb-server ${info.pouchdbServer}; ${info.wrk}; Node ${info.node}. ` +
      `CPU: ${info.cpu}. Settee bundle: ${info.bundle}.`,
  ];
  return [...main, "", ...rust, "", ...replication, "", ...partitions, "", ...search, "", ...costs, "", ...perRound, "", ...detail, "", ...setup].join("\n");
}

/** Settee's full-text search: the build rate, and each query's latency and hits. */
function searchTable(settee) {
  if (!settee.searchBuild) return [];
  return [
    `| Settee \`_search\` over ${PARAMS.bulkDocs} six-word docs | median ms (slowest) | hits (equal to a scan of the corpus) |`,
    "| --- | ---: | ---: |",
    `| index build, first query (docs/s) | ${fmt(settee.searchBuild.perSec)} | – |`,
    ...Object.entries(settee.searchQueries).map(([name, r]) =>
      `| ${name}: \`${r.q.replace(/\|/g, "\\|")}\`, limit 25 | ${ms(r)} | ${r.hits} |`),
  ];
}

// ---------------------------------------------------------------- main

/** `BENCH_ONLY=search`: the search scenario alone, on one fresh Settee. */
async function searchOnly(workerd, bundle) {
  const server = await startSettee(workerd, bundle);
  const rounds = [];
  for (let round = 1; round <= PARAMS.rounds; round++) {
    log(`search round ${round} of ${PARAMS.rounds}`);
    await call(server, "DELETE", `/${SEARCH_DB}`).catch(() => {});
    rounds.push(await searchScenarios(server));
  }
  await server.stop();
  const builds = rounds.map((r) => r.searchBuild.perSec);
  const last = rounds.at(-1);
  const table = searchTable({ searchBuild: { perSec: median(builds) }, searchQueries: last.searchQueries });
  console.log(`\n${table.join("\n")}\n\nIndex builds, each round (docs/s): ${builds.map(fmt).join(" / ")}; queries from the last round.`);
}

/** `BENCH_ONLY=replication`: the replication scenarios alone. */
async function replicationOnly(workerd, bundle) {
  const rep = [];
  for (let round = 1; round <= PARAMS.rounds; round++) {
    log(`replication round ${round} of ${PARAMS.rounds}`);
    rep.push(await replicationScenarios(workerd, bundle));
  }
  const rows = [["Settee → Settee", "setteeToSettee"], ["PouchDB Server → Settee", "pouchToSettee"], ["PouchDB Server → PouchDB Server", "pouchToPouch"]]
    .map(([name, k]) => `| ${name} | ${rep.map((r) => fmt(r[k].perSec)).join(" / ")} | ${fmt(median(rep.map((r) => r[k].perSec)))} |`);
  console.log(`\n| One-shot replication of ${PARAMS.replicationDocs} docs (docs/s) | rounds | median |\n| --- | --- | ---: |\n${rows.join("\n")}`);
}

async function main() {
  const { workerd } = ensureTools();
  const bundle = readBundle();
  if (process.env.BENCH_ONLY === "search") return searchOnly(workerd, bundle);
  if (process.env.BENCH_ONLY === "replication") return replicationOnly(workerd, bundle);
  const info = { ...versions(workerd, bundle), rounds: PARAMS.rounds, foreignCpu: [] };
  log(`${info.cpu}; ${info.workerd}; pouchdb-server ${info.pouchdbServer}`);
  // wrk and the server share the machine's cores; anything else running
  // (a cargo build, say) skews every number, hence the foreign-CPU figures.
  const load = os.loadavg()[0];
  if (load > 0.5) log(`warning: load average is ${load.toFixed(2)}; results will be noisy`);

  const servers = [
    ["Ceiling", () => startCeiling(workerd), ceilingScenarios],
    ["Rust ceiling", () => startCeilingRs(workerd), ceilingScenarios],
    ["Settee", (dir) => startSettee(workerd, bundle, dir), couchScenarios],
    ["PouchDB Server", (dir) => startPouch(dir), couchScenarios],
  ];
  const results = Object.fromEntries(servers.map(([name]) => [name, []]));
  for (let round = 1; round <= PARAMS.rounds; round++) {
    log(`round ${round} of ${PARAMS.rounds}`);
    for (const [name, start, scenarios] of servers) {
      const before = cpuTicks();
      const server = await start();
      results[name].push(await scenarios(server));
      await server.stop();
      if (scenarios === couchScenarios) {
        log(`${name}: cold starts of ${PARAMS.coldDbs} databases after a restart`);
        Object.assign(results[name].at(-1), await coldStartScenarios(start));
      }
      const pct = foreignCpu(before);
      info.foreignCpu.push({ round, server: name, pct });
      if (pct > 10) log(`warning: other processes used ${pct.toFixed(0)}% of a core during ${name}`);
    }
  }

  const rep = [];
  for (let round = 1; round <= PARAMS.rounds; round++) {
    log(`replication round ${round} of ${PARAMS.rounds}`);
    rep.push(await replicationScenarios(workerd, bundle));
  }

  const out = path.join(BENCH, "results");
  if (!QUICK) {
    // The raw numbers first: a report that fails loses nothing.
    fs.mkdirSync(out, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    fs.writeFileSync(
      path.join(out, `bench-${stamp}.json`),
      JSON.stringify({ date: new Date().toISOString(), params: PARAMS, info, results, replication: rep }, null, 2),
    );
  }
  const [ceiling, ceilingRs, settee, pouch] = servers.map(([name]) => aggregate(results[name]));
  const table = report(settee, pouch, ceiling, ceilingRs, info, rep);
  console.log(`\n${table}`);
  if (QUICK) return; // a harness check, not a result
  fs.writeFileSync(path.join(out, "latest.md"), `${table}\n`);
}

const watchdog = setTimeout(() => {
  console.error(`bench: over ${PARAMS.overallTimeoutMs / 60000} min, giving up`);
  stopAllSync();
  process.exit(1);
}, PARAMS.overallTimeoutMs);
watchdog.unref();

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    stopAllSync();
    process.exit(130);
  });
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(`bench: ${err.message}`);
    // Keep the temp dirs: their server.log says what went wrong.
    for (const s of [...running]) await s.stop(true);
    process.exit(1);
  },
);
