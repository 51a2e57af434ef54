#!/usr/bin/env bash
# `make compat`: runs the CouchDB ecosystem's own test suites against a fresh
# Settee and writes COMPATIBILITY.md (see "Compatibility" in README.md).
#
# usage: [SUITES="..."] [SETTEE_URL=http://[user:pass@]host:port] [SETTEE_COMPAT=dir]
#        [COMPAT_ONLY=regex] [COMPAT_FILE_TIMEOUT=900] [COMPAT_SKIP_SETUP=1]
#        [COMPAT_NO_BUILD_RUST=1] [COMPAT_TRACE=1] scripts/compat.sh
#        scripts/compat.sh reset http://user:pass@host:port    (delete every non-system database)
#        scripts/compat.sh report                               (only regenerate COMPATIBILITY.md)
#
#   SUITES         subset of: couchdb-python aiocouch pycouchdb nano7 pouchdb-find pouchdb510
#                  (= pouchdb510-integration pouchdb510-mapreduce) couchdb-harness couch_rs
#   SETTEE_URL     use this running server instead of starting one (credentials default to
#                  admin:password; pycouchdb and couch_rs need exactly admin/password)
#   SETTEE_COMPAT  where the suites are installed (default ~/.cache/settee-compat)
#   COMPAT_ONLY    run only the test files whose name matches this regex (pouchdb510: e.g.
#                  "replication", pouchdb-find: "1-test.basic", couchdb-harness: "basics", as the
#                  files in .settee/compat/<suite>/ are named); the report marks such rows partial
#   COMPAT_FILE_TIMEOUT  seconds per mocha test file (default 900)
#   COMPAT_POUCHDB_SERVER  pouchdb 5.1.0's SERVER variable (default couchdb-master: the suite's
#                  mode for CouchDB 2+ servers; empty = as PouchDB Server's baseline was run)
#   COMPAT_NO_BUILD_RUST=1  skip couch_rs when its test binary is not built yet (building it
#                  takes 1-3 min of cargo on first use)
#   COMPAT_TRACE=1 for debugging: the suites that take a URL reach Settee through a transparent
#                  logging proxy (compat-front.mjs --user none); every request and its status goes
#                  to .settee/compat/trace-requests.log, and each mocha file's share of it to
#                  <suite>/<file>.requests.log. The front on 5984 always logs to front-requests.log.
#
# Raw output goes to .settee/compat/<suite>/ (one directory per suite, replaced when the
# suite runs again); the report covers every suite found there.
#
# Suites that hardcode http://localhost:5984 and assume an admin party (nano 7, couchdb-harness)
# or http://admin:password@localhost:5984 (pycouchdb, couch_rs) reach Settee through
# scripts/compat-front.mjs on 127.0.0.1:5984, a TEST-ONLY front that adds the admin's
# credentials to anonymous requests. The others get Settee's own URL with credentials.
#
# The whole script is one { ... } block, so bash reads all of it before running any: editing
# or pulling this file during a run does not change the run.
{
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=$ROOT/../shared/compat
COMPAT=${SETTEE_COMPAT:-$HOME/.cache/settee-compat}
OUT=${COMPAT_OUT:-$ROOT/.settee/compat}
REPORT=${COMPAT_REPORT:-$ROOT/COMPATIBILITY.md}
KNOWN=$ROOT/compat/known-failures.tsv
FILE_TIMEOUT=${COMPAT_FILE_TIMEOUT:-900}
ONLY=${COMPAT_ONLY:-}
ALL="couchdb-python aiocouch pycouchdb nano7 pouchdb-find pouchdb510 couchdb-harness couch_rs"

say() { printf '[compat %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Deletes every database whose name does not start with "_", through Settee, as the admin.
reset_dbs() {
  local url=$1 base auth dbs d
  base="http://${url#*@}"; base=${base%/}
  auth=${url#http://}; auth=${auth%%@*}
  dbs=$(curl -sf -u "$auth" "$base/_all_dbs") || return 1
  node -e 'for (const d of JSON.parse(process.argv[1])) if (!d.startsWith("_")) console.log(encodeURIComponent(d))' "$dbs" |
    while read -r d; do curl -s -o /dev/null -u "$auth" -X DELETE "$base/$d"; done
}

report() {
  local baseline=$SHARED/README.md
  [ -f "$baseline" ] || baseline=$COMPAT/README.md
  node "$ROOT/scripts/compat-report.mjs" --results "$OUT" --baseline "$baseline" --known "$KNOWN" > "$REPORT.tmp" &&
    mv "$REPORT.tmp" "$REPORT" && say "wrote $REPORT"
}

case ${1:-} in
  reset) reset_dbs "$2"; exit $?;;
  report) report; exit $?;;
  "") ;;
  *) die "unknown command $1 (usage: scripts/compat.sh [reset URL | report])";;
esac

# ---- which suites ----
SUITES=${SUITES:-$ALL}
RUN=""
for s in $SUITES; do
  case $s in
    couchdb-python|aiocouch|pycouchdb|nano7|pouchdb-find|couchdb-harness|couch_rs|pouchdb510-integration|pouchdb510-mapreduce) RUN="$RUN $s";;
    pouchdb510) RUN="$RUN pouchdb510-integration pouchdb510-mapreduce";;
    *) die "unknown suite '$s' (choose from: $ALL pouchdb510-integration pouchdb510-mapreduce)";;
  esac
done
mkdir -p "$OUT"

# ---- 1. install the suites ----
if [ "${COMPAT_SKIP_SETUP:-0}" != 1 ]; then
  [ -f "$SHARED/setup.sh" ] || die "$SHARED/setup.sh not found: make compat needs the suites' installer in ../shared/compat beside this repository"
  say "installing the suites into $COMPAT (log: $OUT/setup.log; fast when already there)"
  COMPAT=$COMPAT EXTRAS=0 bash "$SHARED/setup.sh" > "$OUT/setup.log" 2>&1 ||
    { tail -15 "$OUT/setup.log" >&2; die "setup.sh failed, see $OUT/setup.log"; }
fi
[ -x "$COMPAT/bin/run-all-suites.sh" ] || die "no suites in $COMPAT (run without COMPAT_SKIP_SETUP=1)"
export COMPAT

# ---- 2. Settee, and the admin-party front on 5984 ----
FRONT_PID=""; SETTEE_PID=""; TRACE_PID=""; TMP=""; BUNDLE=""
# stop PID: SIGTERM, up to 10 s to exit, then SIGKILL. settee-serve passes SIGTERM on to its
# workerd, which waits for open requests to drain; a request a client gave up on can keep it
# waiting, so workerd (settee-serve's child, found by its parent PID) is killed after the grace.
stop() {
  local pid=$1 kids
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kids=$(pgrep -P "$pid" 2>/dev/null)
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop in 10 s; killing it${kids:+ and its child $kids}"
    for k in $kids; do kill -KILL "$k" 2>/dev/null; done
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  # Stop exactly the processes this script started, by PID.
  [ -n "$TRACE_PID" ] && stop "$TRACE_PID"
  [ -n "$FRONT_PID" ] && stop "$FRONT_PID"
  [ -n "$SETTEE_PID" ] && stop "$SETTEE_PID"
  [ -n "$TMP" ] && rm -rf "$TMP"
  FRONT_PID=""; SETTEE_PID=""; TRACE_PID=""; TMP=""
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

if [ -n "${SETTEE_URL:-}" ]; then
  u=${SETTEE_URL%/}; hp=${u#http://}
  case $hp in *@*) USERPASS=${hp%%@*}; hp=${hp#*@};; *) USERPASS=${SETTEE_USERPASS:-admin:password};; esac
  SURL=http://$hp
  curl -sf -u "$USERPASS" "$SURL/_up" > /dev/null || die "SETTEE_URL $SURL does not answer /_up with credentials $USERPASS"
  say "using the running server at $SURL"
else
  [ -f .settee/tools.env ] && [ -f router/build/index.js ] || die "no Worker bundle: run \`make build\` first (make compat does)"
  . ./.settee/tools.env
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  SERVE=${SETTEE_SERVE:-$TARGET/release/settee-serve}
  if [ -z "${SETTEE_SERVE:-}" ]; then
    say "building settee-serve (log: $OUT/settee-serve-build.log)"
    if ! cargo build --quiet --release -p e2e --bin settee-serve > "$OUT/settee-serve-build.log" 2>&1; then
      [ -x "$SERVE" ] || { tail -20 "$OUT/settee-serve-build.log" >&2; die "cannot build settee-serve"; }
      say "warning: settee-serve did not build (see $OUT/settee-serve-build.log); using the existing $SERVE"
    fi
  fi
  USERPASS=admin:password
  BUNDLE="router/build/index_bg.wasm of $(date -u -r router/build/index_bg.wasm +%Y-%m-%dT%H:%M:%SZ)"
  PORT=$(free_port)
  SURL=http://127.0.0.1:$PORT
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/settee-compat.XXXXXX")
  umask 077
  printf 'COUCHDB_USER=admin\nCOUCHDB_PASSWORD=password\nCOUCHDB_SECRET=%s\n' \
    "$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" > "$TMP/vars"
  umask 022
  say "starting Settee on $SURL (state $TMP/state, log $OUT/settee.log)"
  # settee-serve lets the environment win over the vars file: drop any admin settings there.
  env -u COUCHDB_USER -u COUCHDB_PASSWORD -u COUCHDB_SECRET \
    "$SERVE" --port "$PORT" --state "$TMP/state" --vars "$TMP/vars" > "$OUT/settee.log" 2>&1 &
  SETTEE_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "$SURL/_up" > /dev/null && break
    kill -0 "$SETTEE_PID" 2>/dev/null || { tail -20 "$OUT/settee.log" >&2; die "Settee exited at start"; }
    sleep 0.2
  done
  curl -sf "$SURL/_up" > /dev/null || die "Settee did not come up in 60 s (see $OUT/settee.log)"
fi
AURL=http://$USERPASS@${SURL#http://}
FRONT=http://127.0.0.1:5984
case ${SURL#http://} in
  127.0.0.1:5984|localhost:5984)
    say "warning: the server itself is on 5984, so no admin-party front: nano7 and couchdb-harness run without admin credentials"
    FRONT=$SURL;;
  *)
    node "$ROOT/scripts/compat-front.mjs" --upstream "$SURL" --port 5984 --user "$USERPASS" \
      --log "$OUT/front-requests.log" > "$OUT/front.log" 2>&1 &
    FRONT_PID=$!
    for _ in $(seq 1 50); do grep -q listening "$OUT/front.log" && break
      kill -0 "$FRONT_PID" 2>/dev/null || { cat "$OUT/front.log" >&2; FRONT_PID=""; die "the admin-party front could not start on 5984"; }
      sleep 0.1; done
    say "$(head -1 "$OUT/front.log")";;
esac
: > "$OUT/front-requests.log"

# DURL: the URL given to suites that take one (Settee itself, or the tracing proxy before it).
DURL=$SURL; TRACE=""
if [ "${COMPAT_TRACE:-0}" = 1 ]; then
  TRACE=$OUT/trace-requests.log; : > "$TRACE"
  tp=$(free_port)
  node "$ROOT/scripts/compat-front.mjs" --upstream "$SURL" --port "$tp" --user none --v6 no \
    --log "$TRACE" > "$OUT/trace-front.log" 2>&1 &
  TRACE_PID=$!
  for _ in $(seq 1 50); do grep -q listening "$OUT/trace-front.log" && break; sleep 0.1; done
  grep -q listening "$OUT/trace-front.log" || die "the tracing proxy did not start: $(cat "$OUT/trace-front.log")"
  DURL=http://127.0.0.1:$tp
  say "COMPAT_TRACE=1: suites with a URL use $DURL, logging to $TRACE"
fi
DAURL=http://$USERPASS@${DURL#http://}

WELCOME=$(curl -s -u "$USERPASS" "$SURL/")
# aiocouch reads every answer as JSON; CouchDB 1.x-style servers send text/plain unless asked.
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$SURL/_all_dbs" -u "$USERPASS")
case $ctype in application/json*) AIO_PLUGIN="";; *) AIO_PLUGIN="-p accept_json_plugin";; esac

# ---- 3. the suites ----
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
begin() {  # begin SUITE: fresh result directory, clean server
  D=$OUT/$1; rm -rf "$D"; mkdir -p "$D"
  T0=$(date +%s)
  reset_dbs "$AURL" || say "warning: could not reset databases"
  say "running $1"
  { echo "started=$(now)"; echo "settee=$WELCOME"; echo "git=$(git describe --always --dirty 2>/dev/null)"
    echo "command=$CMDLINE"; [ -n "$BUNDLE" ] && echo "bundle=$BUNDLE"; } > "$D/meta"
}
finish() { echo "seconds=$(( $(date +%s) - T0 ))" >> "$D/meta"; say "$1 done in $(( $(date +%s) - T0 )) s: $2"; }
# How this run was asked for, for the report: the command and the knobs that change what runs.
CMDLINE=${COMPAT_COMMAND:-scripts/compat.sh}
[ "$SUITES" = "$ALL" ] || CMDLINE="SUITES=\"$SUITES\" $CMDLINE"
for v in COMPAT_ONLY COMPAT_NO_BUILD_RUST COMPAT_TRACE COMPAT_FILE_TIMEOUT COMPAT_POUCHDB_SERVER; do
  [ -n "${!v:-}" ] && CMDLINE="$v=\"${!v}\" $CMDLINE"
done
[ -n "${SETTEE_URL:-}" ] && CMDLINE="SETTEE_URL=$SURL $CMDLINE"

# runall SUITE URL USERPASS: one suite through the shared run-all-suites.sh (the baseline's commands)
runall() { COLUMNS=300 URL=$2 USERPASS=$3 SUITES=$1 OUT=$D "$COMPAT/bin/run-all-suites.sh" > "$D/run-all.log" 2>&1; }

# mocha_file NAME MOCHA_ARGS...: one test file in its own mocha process, with a timeout
mocha_file() {
  local name=$1 rc t=$(date +%s); shift
  reset_dbs "$AURL" > /dev/null 2>&1
  local from=0; [ -n "$TRACE" ] && from=$(wc -l < "$TRACE")
  timeout -k 10 "$FILE_TIMEOUT" node --unhandled-rejections=warn "$@" > "$D/$name.txt" 2>&1; rc=$?
  [ -n "$TRACE" ] && tail -n +$((from + 1)) "$TRACE" > "$D/$name.requests.log"
  echo "$name rc=$rc seconds=$(( $(date +%s) - t )) timeout=$FILE_TIMEOUT" >> "$D/files.txt"
  printf '  %-28s rc=%-3s %s\n' "$name" "$rc" "$(grep -E '^ +[0-9]+ (passing|failing|pending)' "$D/$name.txt" | tr -s ' ' | tr '\n' ' ')" >&2
}

for s in $RUN; do
  case $s in
  couchdb-python)
    begin $s; runall $s "$DURL" "$USERPASS"; echo "url=$AURL" >> "$D/meta"
    finish $s "$(tail -1 "$D/couchdb-python.txt")";;
  aiocouch)
    begin $s
    AIOCOUCH_PLUGIN="$AIO_PLUGIN" runall $s "$DURL" "$USERPASS"
    echo "mode=${AIO_PLUGIN:-as shipped}" >> "$D/meta"; echo "url=$SURL ($USERPASS)" >> "$D/meta"
    if grep -q INTERNALERROR "$D/aiocouch.txt"; then
      # CPython 3.11.7 fault while pytest formats a timeout in tests/test_changes.py (see the
      # suites' README): run the rest without that file, then that file alone with short tracebacks.
      mv "$D/aiocouch.txt" "$D/aiocouch-internalerror.txt"
      say "aiocouch: pytest INTERNALERROR; re-running without tests/test_changes.py"
      AIOCOUCH_PLUGIN="$AIO_PLUGIN --ignore=tests/test_changes.py" runall $s "$DURL" "$USERPASS"
      mv "$D/aiocouch.txt" "$D/aiocouch-main.txt"
      (cd "$COMPAT/sdists/x/aiocouch-4.0.1" && env PYTHONPATH="$COMPAT/harness" COUCHDB_HOST="$DURL" \
        COUCHDB_USER="${USERPASS%%:*}" COUCHDB_PASS="${USERPASS#*:}" timeout 900 "$COMPAT/venv/bin/python" -m pytest \
        -p no:cacheprovider $AIO_PLUGIN --timeout 30 -q -rfE --tb=line tests/test_changes.py) > "$D/aiocouch-changes.txt" 2>&1
      echo "split=aiocouch-main.txt aiocouch-changes.txt" >> "$D/meta"
      finish $s "$(tail -1 "$D/aiocouch-main.txt") + test_changes: $(tail -1 "$D/aiocouch-changes.txt")"
    else finish $s "$(tail -1 "$D/aiocouch.txt")"; fi;;
  pycouchdb)
    begin $s; runall $s "$FRONT" ""; echo "url=http://admin:password@localhost:5984 (hardcoded; via the front)" >> "$D/meta"
    finish $s "$(tail -1 "$D/pycouchdb.txt")";;
  nano7)
    begin $s; "$COMPAT/bin/run-nano7-tests.sh" "$D/nano7.txt" > /dev/null 2>&1
    echo "url=http://localhost:5984 (hardcoded, admin party; via the front)" >> "$D/meta"
    finish $s "$(tail -1 "$D/nano7.txt")";;
  couchdb-harness)
    begin $s
    H=$COMPAT/suites/couchdb-harness-0.1.6
    names=$(ls "$H"/javascript/tests/*.js | xargs -n1 basename | sed 's/\.js$//' | { [ -n "$ONLY" ] && grep -E "$ONLY" || cat; })
    RESET_CMD="bash '$ROOT/scripts/compat.sh' reset '$AURL'" PER_TEST_TIMEOUT=${PER_TEST_TIMEOUT:-120} \
      "$COMPAT/bin/run-couchdb-harness.sh" "$FRONT/" "$D/couchdb-harness.txt" $names > /dev/null 2>&1
    echo "url=$FRONT/ (admin party via the front; databases deleted between files)" >> "$D/meta"
    [ -n "$ONLY" ] && echo "only=$ONLY" >> "$D/meta"
    finish $s "$(tail -1 "$D/couchdb-harness.txt")";;
  couch_rs)
    begin $s
    if [ "${COMPAT_NO_BUILD_RUST:-0}" = 1 ] && ! ls "$COMPAT"/crates/target/debug/deps/couch_rs-* > /dev/null 2>&1; then
      echo "notrun=its test binary is not built (COMPAT_NO_BUILD_RUST=1)" >> "$D/meta"; finish $s "not run"; continue
    fi
    "$COMPAT/bin/run-couch_rs-tests.sh" "$D/couch_rs.txt" > /dev/null 2>&1
    echo "url=http://admin:password@localhost:5984 (hardcoded; via the front)" >> "$D/meta"
    finish $s "$(tail -1 "$D/couch_rs.txt")";;
  pouchdb-find)
    # One mocha process per test file, with the suite's own hooks (test-suite-N/index.js).
    begin $s
    F=$COMPAT/suites/pouchdb-find-0.10.5
    cat > "$D/one-file.js" <<'JS'
// Generated by scripts/compat.sh: pouchdb-find's test/test.js (http half) for ONE test file,
// inside its suite's own describe and hooks: test-suite-N/index.js with every other
// require('./test.X')(dbType, context) line taken out.
'use strict';
var fs = require('fs'), path = require('path'), Module = require('module');
var dir = process.env.FIND_DIR, parts = process.env.FIND_FILE.split('/');
var r = Module.createRequire(dir + '/test/test.js');
var Pouch = r('pouchdb-core').plugin(r('pouchdb-adapter-memory')).plugin(r('pouchdb-adapter-http'))
  .plugin(r('pouchdb-replication'));
Pouch.plugin(r('../'));
r('./test-utils');
var index = path.join(dir, 'test', parts[0], 'index.js');
var kept = 0;
var src = fs.readFileSync(index, 'utf8').replace(/require\('\.\/(test\.[^']+)'\)\(dbType, context\);/g,
  function (all, f) { if (f === parts[1]) { kept++; return all; } return ''; });
if (kept !== 1) throw new Error('compat: ' + parts[1] + ' not found in ' + index);
var m = new Module(index, module);
m.filename = index;
m.paths = Module._nodeModulePaths(path.dirname(index));
m._compile(src, index);
m.exports(process.env.COUCH_HOST + '/testdb_find', 'http', Pouch);
JS
    for f in $(cd "$F/test" && ls test-suite-1/test.*.js test-suite-2/test.*.js); do
      name=$(echo "${f%.js}" | sed 's#^test-suite-\([12]\)/#\1-#')
      [ -n "$ONLY" ] && ! echo "$name" | grep -qE "$ONLY" && continue
      (cd "$F" && FIND_DIR=$F FIND_FILE=${f%.js} COUCH_HOST=$DAURL mocha_file "$name" \
        ./node_modules/.bin/_mocha --grep http -R spec --timeout 20000 "$D/one-file.js")
    done
    echo "url=$AURL" >> "$D/meta"; [ -n "$ONLY" ] && echo "only=$ONLY" >> "$D/meta"
    finish $s "$(wc -l < "$D/files.txt") files";;
  pouchdb510-integration|pouchdb510-mapreduce)
    # bin/run-pouchdb510-tests.sh, one test file per mocha process.
    begin $s
    P=$COMPAT/suites/pouchdb-5.1.0; dir=${s#pouchdb510-}
    # The suite's own switch for CouchDB 2+ servers (testUtils.isCouchMaster()): opaque string
    # sequences, unordered _changes. Without it every replication test stops at its first
    # `update_seq: 3` check. A test that returns early in this mode counts as passed.
    PSERVER=${COMPAT_POUCHDB_SERVER-couchdb-master}
    echo "pouchdb_server=${PSERVER:-(unset)}" >> "$D/meta"
    for f in $(cd "$P" && ls tests/$dir/test.*.js); do
      b=$(basename "$f" .js); [ "$b" = test.aa.setup ] && continue   # its one test has no "http" in its title
      [ -n "$ONLY" ] && ! echo "${b#test.}" | grep -qE "$ONLY" && continue
      (cd "$P" && COUCH_HOST=$DAURL LEVEL_ADAPTER=memdown SERVER=$PSERVER mocha_file "${b#test.}" ./node_modules/.bin/_mocha \
        --timeout 30000 --require=./tests/integration/node.setup.js --reporter=spec --grep http "$f")
    done
    echo "url=$AURL" >> "$D/meta"; [ -n "$ONLY" ] && echo "only=$ONLY" >> "$D/meta"
    finish $s "$(wc -l < "$D/files.txt") files";;
  esac
done

# ---- 4. the report ----
cleanup
report
exit $?
}
