#!/usr/bin/env node
// Writes COMPATIBILITY.md (to stdout) from the raw output of scripts/compat.sh.
//
// usage: node scripts/compat-report.mjs --results .settee/compat \
//          --baseline ../shared/compat/README.md --known compat/known-failures.tsv
//
// Deterministic: the same inputs give the same bytes (no clock, no environment;
// the measurement's date and command come from each suite's meta file).
// Each suite's result directory (.settee/compat/<suite>/) holds `meta` (key=value lines
// written by compat.sh) and the runner's output, parsed here:
//   pytest -q -rfE   last line "N failed, M passed, ..." and `FAILED x::y - msg` / `ERROR ...`
//   tape (nano7)     per file "# test" headers, `not ok N msg` lines, crashed files
//   mocha spec       per file "N passing/failing/pending" and the `  N) full title:` list
//   couchdb-harness  `== name: pass|fail(rc=N)` blocks
//   couch_rs         `name: ok|FAILED(rc=N)` lines
// Every failing test is matched against compat/known-failures.tsv (suite, JavaScript
// regex on the test's name, category, reason); the first match gives the "why", and a
// failure nothing matches is "Settee bug, open (not diagnosed yet)".

import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = {};
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
const RESULTS = opt.results || '.settee/compat';
const BASELINE = opt.baseline;
const KNOWN = opt.known || 'compat/known-failures.tsv';

// [key, title, baseline row matcher]
const SUITES = [
  ['couchdb-python', 'couchdb-python 1.2 (PyPI `CouchDB`)', /^couchdb-python/],
  ['aiocouch', 'aiocouch 4.0.1', null], // row depends on the Accept plugin, below
  ['pycouchdb', 'pycouchdb 1.17.1 integration', /^pycouchdb/],
  ['nano7', 'nano 7.1.1 integration (tape)', /^nano 7/],
  ['pouchdb-find', 'pouchdb-find 0.10.5, http', /^pouchdb-find/],
  ['pouchdb510-integration', 'pouchdb 5.1.0 integration, http', /^pouchdb 5\.1\.0 integration/],
  ['pouchdb510-mapreduce', 'pouchdb 5.1.0 mapreduce, http', /^pouchdb 5\.1\.0 mapreduce/],
  ['couchdb-harness', 'couchdb-harness 0.1.6 (CouchDB 1.x JS suite, files)', /^couchdb-harness/],
  ['couch_rs', 'couch_rs 0.13.1 integration', /^couch_rs/],
];

const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : null);
const lines = (s) => (s || '').replace(/\r/g, '').split('\n');

function readMeta(dir) {
  const meta = {};
  for (const l of lines(read(path.join(dir, 'meta')))) {
    const i = l.indexOf('=');
    if (i > 0) meta[l.slice(0, i)] = l.slice(i + 1);
  }
  return meta;
}

// Strips what changes from run to run without meaning anything (ports, timestamps in
// database names, durations), so two runs with the same failures give the same report.
function scrub(s) {
  return s
    .replace(/\x1b\[[0-9;]*m/g, '')
    .replace(/(127\.0\.0\.1|localhost):\d{4,5}(?!\d)/g, (m, h) => (m.endsWith(':5984') ? m : `${h}:PORT`))
    .replace(/admin:password@/g, '')
    .replace(/\b1\d{12}\b/g, '<ts>')
    .replace(/\(\d+(\.\d+)?m?s\)/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}
const short = (s, n = 180) => { s = scrub(s); return s.length > n ? s.slice(0, n - 1) + '…' : s; };

// ---------------------------------------------------------------- parsers
// Each returns { passed, failed, skipped, failures: [{ name, detail }], notes: [] }

function parsePytest(text, label = '') {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  const ls = lines(text);
  const summary = [...ls].reverse().find((l) => /\d+ (passed|failed|error|skipped)/.test(l) && / in [\d.]+s/.test(l));
  if (summary) {
    for (const [, n, w] of summary.matchAll(/(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)/g)) {
      if (w === 'passed' || w === 'xfailed') r.passed += +n;
      else if (w === 'skipped') r.skipped += +n;
      else r.failed += +n;
      if (w.startsWith('error')) r.notes.push(`${label}${n} of the failures are errors in fixtures/setup`);
    }
  } else {
    r.notes.push(`${label}no pytest summary line: the run crashed or timed out`);
  }
  if (ls.some((l) => l.startsWith('INTERNALERROR'))) r.notes.push(`${label}pytest INTERNALERROR`);
  for (const l of ls) {
    const m = /^(FAILED|ERROR) (\S+)(?: - (.*))?$/.exec(l);
    if (m) r.failures.push({ name: m[2] + (m[1] === 'ERROR' ? ' (error)' : ''), detail: m[3] || '' });
  }
  return r;
}

function parseTape(text) {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  let file = null, test = null, last = null;
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    const fm = /^(tests\/\S+\.js): (\d+) ok, (\d+) not ok(.*)$/.exec(l);
    if (fm) {
      file = fm[1]; test = null;
      r.passed += +fm[2]; r.failed += +fm[3];
      if (/crashed/.test(fm[4])) {
        // no "not ok" line was printed: the runner counted the crash as one failure;
        // the detail is the exception node printed (its first line and reason/uri fields)
        const body = [];
        for (let j = i + 1; j < ls.length && ls[j].startsWith('    '); j++) body.push(ls[j].trim());
        const err = body.find((x) => /^\w*Error\b/.test(x)) || fm[4].trim();
        const extra = body.filter((x) => /^(reason|uri|description):/.test(x)).slice(0, 2);
        const lastTest = body.filter((x) => x.startsWith('# ')).pop();
        r.failures.push({ name: `${file} (file crashed or timed out${lastTest ? ` after "${lastTest.slice(2)}"` : ''})`,
          detail: [err, ...extra].join('; ') });
      }
      continue;
    }
    const body = l.replace(/^ {4}/, '');
    const tm = /^# (.*)$/.exec(body);
    if (tm && !/^# (tests|pass|fail|ok)\b/.test(body)) { test = tm[1]; continue; }
    const nm = /^not ok \d+ (.*)$/.exec(body);
    if (nm) {
      last = { name: `${file} › ${test || '?'} › ${nm[1]}`, detail: '' };
      r.failures.push(last);
      // the YAML block after it: operator/expected/actual/at
      const yaml = [];
      for (let j = i + 1; j < ls.length && /^ {4}  /.test(ls[j]); j++) {
        const y = ls[j].trim();
        if (/^(expected|actual|operator|at):/.test(y)) yaml.push(y);
      }
      last.detail = yaml.filter((y) => !y.startsWith('at:')).join('; ');
    }
  }
  return r;
}

// One mocha spec-reporter output file (one test file of pouchdb 5.1.0 / pouchdb-find).
// Errors thrown in callbacks after a test's promise chain (PouchDB 5's style) are only
// "UnhandledPromiseRejectionWarning"s under --unhandled-rejections=warn, and the test then
// fails by mocha's timeout; the warnings printed while a test ran say what went wrong.
function inlineHints(ls) {
  const hints = {};
  let warns = [];
  for (const l of ls) {
    const w = /UnhandledPromiseRejectionWarning: (.*)$/.exec(l);
    if (w && !/^Unhandled promise rejection\./.test(w[1])) { warns.push(w[1].trim()); continue; }
    if (/^ +[✓√-] /.test(l)) { warns = []; continue; }
    const m = /^ {4,}(\d+)\) /.exec(l);
    if (m) { hints[m[1]] = [...new Set(warns)]; warns = []; }
  }
  return hints;
}

function parseMochaFile(text, file, fileInfo) {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  const ls = lines(text).map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
  const num = (w) => { const l = ls.find((x) => new RegExp(`^ +\\d+ ${w}\\b`).test(x)); return l ? +l.trim().split(' ')[0] : null; };
  const passing = num('passing'), failing = num('failing'), pending = num('pending');
  const listStart = ls.findIndex((x) => /^ +\d+ failing/.test(x));
  const hints = inlineHints(listStart >= 0 ? ls.slice(0, listStart) : ls);
  if (passing !== null) {
    r.passed = passing; r.failed = failing || 0; r.skipped = pending || 0;
    // "  1) full title:" then the error message on the following lines
    for (let i = listStart + 1; listStart >= 0 && i < ls.length; i++) {
      const m = /^ {2}(\d+)\) (.*)$/.exec(ls[i]);
      if (!m) continue;
      let title = m[2], j = i + 1;
      // a title may wrap onto following lines until the one ending with ':'
      while (!title.endsWith(':') && j < ls.length && ls[j].trim() && !/^ {5}\S/.test(ls[j])) title += ' ' + ls[j++].trim();
      title = title.replace(/:$/, '');
      // the message lines, then a chai diff's removed (-, actual) and added (+, expected) lines
      const msg = [], diff = [];
      let inDiff = false;
      for (; j < ls.length; j++) {
        const t = ls[j].trim();
        if (/^ {2}\d+\) /.test(ls[j])) break;
        if (t === '+ expected - actual') { inDiff = true; continue; }
        if (!t) continue;
        if (/^at /.test(t)) break;
        if (inDiff) { if (/^[-+]/.test(t)) diff.push(t.replace(/^([-+])\s+/, '$1')); } else if (msg.length < 3) msg.push(t);
      }
      let detail = msg.join(' ');
      const h = hints[m[1]] || [];
      if (/timeout of \d+ms exceeded/.test(detail) && h.length) detail += ` (meanwhile: ${h.slice(0, 2).join('; ')})`;
      r.failures.push({ name: `${file}: ${title}`, detail, diff });
      i = j - 1;
    }
    if (r.failures.length !== r.failed) r.notes.push(`${file}: ${r.failed} failing, ${r.failures.length} listed`);
  } else {
    // killed (timeout) or crashed before mocha's summary: count the spec lines it printed
    for (const l of ls) {
      if (/^ +[✓√] /.test(l)) r.passed++;
      else if (/^ +- /.test(l)) r.skipped++;
      else {
        const m = /^ {4,}(\d+)\) (.*)$/.exec(l);
        if (m) {
          r.failed++;
          const h = hints[m[1]] || [];
          r.failures.push({ name: `${file}: ${m[2]}`, detail: `(file did not finish)${h.length ? ' ' + h.slice(0, 2).join('; ') : ''}`, diff: [] });
        }
      }
    }
    const rc = fileInfo ? fileInfo.rc : '?';
    const why = rc === '124' || rc === '137' ? `killed after its ${fileInfo.timeout} s timeout` : `exited rc=${rc} before mocha's summary`;
    const lastLines = ls.filter((l) => l.trim()).slice(-3).map((l) => l.trim()).join(' / ');
    r.failed++;
    r.failures.push({ name: `${file}: (file ${why}; the tests after this point did not run)`, detail: lastLines, diff: [] });
  }
  return r;
}

function parseMochaDir(dir) {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [], files: 0 };
  const info = {};
  for (const l of lines(read(path.join(dir, 'files.txt')))) {
    const m = /^(\S+) rc=(\d+) seconds=(\d+) timeout=(\d+)/.exec(l);
    if (m) info[m[1]] = { rc: m[2], seconds: +m[3], timeout: m[4] };
  }
  for (const name of Object.keys(info).sort()) {
    const one = parseMochaFile(read(path.join(dir, `${name}.txt`)) || '', name, info[name]);
    r.files++;
    r.passed += one.passed; r.failed += one.failed; r.skipped += one.skipped;
    r.failures.push(...one.failures); r.notes.push(...one.notes);
  }
  return r;
}

function parseHarness(text) {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const m = /^== (\S+): (pass|fail\(rc=(\d+)\))$/.exec(ls[i]);
    if (!m) continue;
    if (m[2] === 'pass') { r.passed++; continue; }
    r.failed++;
    const out = [];
    for (let j = i + 1; j < ls.length && ls[j].startsWith('    '); j++) out.push(ls[j].trim());
    // couch_test_runner prints the failed assertion ("Assertion failed: ...") or the exception
    // (not the suite's own "skipping: ..." notes, which may say "error")
    const said = out.filter((l) => !l.startsWith('skipping:'));
    const pick = said.find((l) => /Assertion|failed|Error|error|Exception|expected/i.test(l)) || said.find((l) => l) || '';
    // the traceback's frame in the test file itself: "61: attachment_ranges.js"
    const frame = out.find((l) => new RegExp(`^\\d+: ${m[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.js$`).test(l));
    const rc = m[3] === '124' ? ' (timed out)' : '';
    r.failures.push({ name: m[1] + rc, detail: pick + (frame ? ` (at ${m[1]}.js:${frame.split(':')[0]})` : '') });
  }
  return r;
}

function parseCouchRs(text) {
  const r = { passed: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const m = /^(\S+): (ok|FAILED\(rc=(\d+)\))$/.exec(ls[i]);
    if (!m) continue;
    if (m[2] === 'ok') { r.passed++; continue; }
    r.failed++;
    const out = [];
    for (let j = i + 1; j < ls.length && ls[j].startsWith('    '); j++) out.push(ls[j].trim());
    r.failures.push({ name: m[1] + (m[3] === '124' ? ' (timed out)' : ''), detail: out.slice(0, 2).join(' ') });
  }
  if (ls.some((l) => /build failed/.test(l))) r.notes.push('the couch_rs test binary did not build');
  return r;
}

function merge(a, b) {
  return {
    passed: a.passed + b.passed, failed: a.failed + b.failed, skipped: a.skipped + b.skipped,
    failures: [...a.failures, ...b.failures], notes: [...a.notes, ...b.notes],
  };
}

function parseSuite(key, dir, meta) {
  const f = (n) => read(path.join(dir, n));
  switch (key) {
    case 'couchdb-python': return parsePytest(f('couchdb-python.txt'));
    case 'pycouchdb': return parsePytest(f('pycouchdb.txt'));
    case 'aiocouch':
      if (meta.split) {
        const r = merge(parsePytest(f('aiocouch-main.txt'), 'without test_changes.py: '),
          parsePytest(f('aiocouch-changes.txt'), 'test_changes.py alone: '));
        r.notes.unshift('the full run ended in a pytest INTERNALERROR (the CPython 3.11.7 fault the suites\' README describes); ' +
          'tests/test_changes.py was then run on its own with --tb=line');
        return r;
      }
      return parsePytest(f('aiocouch.txt'));
    case 'nano7': return parseTape(f('nano7.txt'));
    case 'couchdb-harness': return parseHarness(f('couchdb-harness.txt'));
    case 'couch_rs': return parseCouchRs(f('couch_rs.txt'));
    default: return parseMochaDir(dir);
  }
}

// ---------------------------------------------------------------- baseline and reasons
function baselineRows() {
  const rows = [];
  const text = BASELINE ? read(BASELINE) : null;
  if (!text) return rows;
  let inTable = false;
  for (const l of lines(text)) {
    if (/^### Baseline against pouchdb-server/.test(l)) { inTable = true; continue; }
    if (inTable && !l.startsWith('|')) { if (rows.length) break; continue; }
    if (!inTable || /^\|\s*(suite|---)/.test(l)) continue;
    const c = l.split('|').slice(1, -1).map((x) => x.trim());
    rows.push({ suite: c[0], ran: c[1], passed: c[2], failed: c[3] });
  }
  return rows;
}

// The categories a reason may have (compat/known-failures.tsv's third column).
const CATEGORIES = {
  'settee-bug': 'Settee bug, open',
  'couchdb-1x': 'suite asserts CouchDB 1.x/2.x behaviour that CouchDB 3 changed',
  'pouchdb-server': 'suite asserts PouchDB Server behaviour',
  'suite-bug': 'bug in the suite',
  'environment': 'how the suite is run here (credentials, admin party, local tools)',
};

function knownReasons() {
  const out = [];
  for (const [n, l] of lines(read(KNOWN)).entries()) {
    if (!l.trim() || l.startsWith('#')) continue;
    const [suite, pattern, category, reason, detail] = l.split('\t');
    if (!pattern || !reason || !CATEGORIES[category]) {
      throw new Error(`${KNOWN}:${n + 1}: want suite<TAB>regex<TAB>category<TAB>reason[<TAB>regex], category one of ${Object.keys(CATEGORIES).join(' ')}`);
    }
    out.push({ suite, re: new RegExp(pattern), category, reason: reason.trim(), detail: detail ? new RegExp(detail.trim()) : null });
  }
  return out;
}

// ---------------------------------------------------------------- output
const cell = (s) => String(s).replace(/\|/g, '\\|');
const code = (s) => cell(s).replace(/`/g, "'");
const known = knownReasons();
const base = baselineRows();
const OPEN = 'Settee bug, open';

const measured = [];
for (const [key, title, bre] of SUITES) {
  const dir = path.join(RESULTS, key);
  const meta = fs.existsSync(path.join(dir, 'meta')) ? readMeta(dir) : null;
  let r = null, b = null;
  if (meta && !meta.notrun) r = parseSuite(key, dir, meta);
  if (key === 'aiocouch') {
    const plugin = meta && /accept_json/.test(meta.mode || '');
    b = base.find((x) => (plugin ? /accept_json_plugin/ : /as shipped/).test(x.suite) && /^aiocouch/.test(x.suite));
  } else {
    b = base.find((x) => bre.test(x.suite));
  }
  for (const f of r ? r.failures : []) {
    const text = [scrub(f.detail), ...(f.diff || []).map(scrub)].join('\n');
    const k = known.find((x) => (x.suite === key || x.suite === '*') && x.re.test(f.name) && (!x.detail || x.detail.test(text)));
    f.category = k ? k.category : 'settee-bug';
    f.why = k ? (k.category === 'settee-bug' ? `${OPEN}: ${k.reason}` : k.reason) : `${OPEN} (not diagnosed yet)`;
  }
  measured.push({ key, title, meta, r, b });
}

const out = [];
const p = (s = '') => out.push(s);
const dates = [...new Set(measured.filter((m) => m.meta && m.meta.started).map((m) => m.meta.started.slice(0, 10)))].sort();
const cmds = [...new Set(measured.filter((m) => m.meta && m.meta.command).map((m) => m.meta.command))].sort();
const gits = [...new Set(measured.filter((m) => m.meta && m.meta.git).map((m) => m.meta.git))].sort();
const welcome = [...new Set(measured.filter((m) => m.meta && m.meta.settee).map((m) => {
  try {
    const w = JSON.parse(m.meta.settee);
    return `${w.vendor ? `${w.vendor.name} ${w.vendor.version}` : w.couchdb || ''} (CouchDB ${w.version || '?'})`;
  } catch { return ''; }
}).filter(Boolean))].sort();
const bundles = [...new Set(measured.filter((m) => m.meta && m.meta.bundle).map((m) => m.meta.bundle))].sort();

p('# Compatibility');
p();
p('<!-- Generated by `make compat` (scripts/compat.sh → scripts/compat-report.mjs). Do not edit by hand:');
p('     reasons for known failures live in compat/known-failures.tsv. -->');
p();
p('How Settee fares under the test suites that CouchDB\'s clients ship, run unchanged from their');
p('registry packages (installed by `../shared/compat/setup.sh`) against a fresh Settee on `workerd`.');
p('CouchDB 3.x is the spec: where a suite asserts CouchDB 1.x or PouchDB-Server-only behaviour, the');
p('failure is listed with that reason rather than "fixed".');
p();
p(`- Measured: ${dates.join(', ') || 'never'} (UTC), with \`${cmds.join('`, `') || 'make compat'}\`` +
  `${gits.length ? `, tree \`${gits.join('`, `')}\`` : ''}${welcome.length ? `, server ${welcome.join(', ')}` : ''}` +
  `${bundles.length ? `, bundle ${bundles.join(', ')}` : ''}.`);
p('- Raw output: `.settee/compat/<suite>/` (not committed). `make compat SUITES="nano7 pouchdb510"` re-runs a subset;');
p('  the rows of suites not re-run keep their previous numbers and date.');
p('- **The admin-party front is test-only.** Settee has no admin party. Suites that hardcode');
p('  `http://localhost:5984` and expect one (nano 7, couchdb-harness), or hardcode');
p('  `http://admin:password@localhost:5984` (pycouchdb, couch_rs), reach Settee through');
p('  `scripts/compat-front.mjs` on 127.0.0.1:5984, which adds the admin\'s Basic credentials to');
p('  requests that carry no `Authorization` header and no `AuthSession` cookie, and forwards');
p('  everything else unchanged. It exists only for these measurements. All other suites get');
p('  Settee\'s own URL with the admin\'s credentials.');
p('- PouchDB Server 4.2.0 (in-memory, admin party unless noted) is the baseline, as measured in');
p('  `../shared/compat/README.md`. It ran pouchdb 5.1.0 and pouchdb-find in one mocha process per');
p('  suite; here each test file runs in its own process (so one failing hook cannot skip the rest');
p('  of a suite), and the databases are deleted between files, which can change the counts slightly.');
const ps = measured.find((m) => m.key === 'pouchdb510-integration' && m.meta && m.meta.pouchdb_server);
if (ps && ps.meta.pouchdb_server !== '(unset)') {
  p(`- pouchdb 5.1.0 runs with \`SERVER=${ps.meta.pouchdb_server}\`, the suite's own mode for CouchDB 2+ servers`);
  p('  (opaque string sequences, `_changes` order not guaranteed); without it every replication test stops');
  p('  at its first integer `update_seq` check. The dozen tests that return early in that mode count as passed.');
}
p();
p('| suite | Settee passed | failed | skipped | PouchDB Server passed | failed | ran | measured |');
p('|---|---|---|---|---|---|---|---|');
for (const m of measured) {
  const b = m.b || { passed: '?', failed: '?', ran: '?' };
  const partial = m.meta && m.meta.only ? ` (only files matching \`${m.meta.only}\`)` : '';
  const mode = m.key === 'aiocouch' && m.meta && m.meta.mode ? ` (${m.meta.mode === 'as shipped' ? 'as shipped' : '+ accept_json_plugin'})` : '';
  const when = m.meta && m.meta.started ? m.meta.started.slice(0, 10) : '';
  if (!m.r) {
    const why = m.meta && m.meta.notrun ? `not run: ${m.meta.notrun}` : 'not run';
    p(`| ${cell(m.title + mode)} | ${cell(why)} | | | ${cell(b.passed)} | ${cell(b.failed)} | ${cell(b.ran)} | ${when} |`);
    continue;
  }
  p(`| ${cell(m.title + mode + partial)} | ${m.r.passed} | ${m.r.failed} | ${m.r.skipped} | ${cell(b.passed)} | ${cell(b.failed)} | ${cell(b.ran)} | ${when} |`);
}
p();
p('"skipped" counts pending mocha tests and pytest skips. couchdb-harness counts whole test files');
p('(each is one `couchTests` function of CouchDB 1.x). The baseline\'s "ran" and its notes are');
p('the README\'s, verbatim.');
p();

// Failures by category, per suite (listed failures; a crashed file counts once).
const cats = Object.keys(CATEGORIES);
p('## Failures by cause');
p();
p(`| suite | ${cats.map((c) => CATEGORIES[c]).join(' | ')} |`);
p(`|---|${cats.map(() => '---').join('|')}|`);
const total = Object.fromEntries(cats.map((c) => [c, 0]));
for (const m of measured) {
  if (!m.r) continue;
  const n = Object.fromEntries(cats.map((c) => [c, 0]));
  for (const f of m.r.failures) { n[f.category]++; total[f.category]++; }
  p(`| ${cell(m.title)} | ${cats.map((c) => n[c]).join(' | ')} |`);
}
p(`| **total** | ${cats.map((c) => `**${total[c]}**`).join(' | ')} |`);
p();
p('Every failure a rule in `compat/known-failures.tsv` does not explain counts as a Settee bug.');
p('The reasons that are not Settee bugs say which CouchDB 3 behaviour the test contradicts.');
p();

for (const m of measured) {
  p(`## ${m.title}`);
  p();
  if (!m.r) { p(m.meta && m.meta.notrun ? `Not run: ${m.meta.notrun}.` : 'Not run yet.'); p(); continue; }
  const info = [];
  if (m.meta.url) info.push(`URL: \`${scrub(m.meta.url)}\``);
  if (m.meta.seconds) info.push(`${m.meta.seconds} s`);
  if (m.r.files) info.push(`${m.r.files} test files, one mocha process each`);
  if (m.b) info.push(`baseline note: ${m.b.failed}`);
  p(info.join('; ') + '.');
  p();
  for (const n of m.r.notes) p(`- ${n}`);
  if (m.r.notes.length) p();
  if (!m.r.failures.length) { p('No failures.'); p(); continue; }
  p('| failing test | why | error (first lines) |');
  p('|---|---|---|');
  for (const f of m.r.failures) {
    const d = f.diff && f.diff.length ? `${f.detail} — diff (-actual +expected): ${f.diff.slice(0, 4).join(' ')}` : f.detail;
    p(`| ${code(short(f.name, 220))} | ${cell(f.why)} | ${code(short(d, 240))} |`);
  }
  p();
}

process.stdout.write(out.join('\n'));
