// PouchDB querying Settee's views over HTTP must give the same rows as
// PouchDB's own local map/reduce over the same 1,000 documents, with
// string, number, array and object keys. Usage: node pouchdb-views.mjs SERVER_URL
import PouchDB from 'pouchdb';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'settee-pouch-views-'));
const Local = PouchDB.defaults({ prefix: dir + '/' });
const remote = new PouchDB(`${base}/pouch-views`);

// PouchDB collates strings by code unit, CouchDB (and Settee) by ICU: the
// words are ones both orders agree on. ICU cases (case, accents) are unit
// tests of shared::collate against CouchDB's documented order.
const words = ['apple', 'banana', 'cherry', 'a b', 'ab', '10', '9', '', 'zebra', 'apple pie', 'b'];
const docs = [];
for (let i = 0; i < 1000; i++) {
  const w = words[i % words.length];
  docs.push({
    _id: `d${String(i).padStart(4, '0')}`,
    n: (i * 37) % 101 - 50 + (i % 4 === 0 ? 0.5 : 0),
    s: w,
    a: [w, i % 5, i % 3 === 0 ? null : true],
    o: { k: w, v: i % 7 },
    tags: i % 2 ? ['x', 'y'] : ['y'],
  });
}
const ddoc = {
  _id: '_design/t',
  views: {
    by_n: { map: 'function (doc) { emit(doc.n, doc.n); }', reduce: '_sum' },
    n_s: { map: 'function (doc) { emit(doc.n, doc.s); }' },
    by_s: { map: 'function (doc) { emit(doc.s, 1); }', reduce: '_count' },
    by_a: { map: 'function (doc) { emit(doc.a, doc.n); }', reduce: '_stats' },
    by_o: { map: 'function (doc) { emit(doc.o, null); }' },
    mixed: { map: 'function (doc) { var ks = [doc.n, doc.s, doc.a, doc.o, null, doc.n > 0]; emit(ks[doc.o.v % 6], doc.o.v); }', reduce: 'function (k, v, re) { return sum(v); }' },
    tags: { map: 'function (doc) { doc.tags.forEach(function (t) { emit([t, doc.s], doc.n); }); }', reduce: '_count' },
  },
};

const queries = [
  ['t/by_n', { reduce: false }],
  ['t/n_s', {}],
  ['t/by_n', {}],
  ['t/by_n', { reduce: false, startkey: -10, endkey: 10, limit: 30, skip: 3 }],
  ['t/by_n', { reduce: false, descending: true, startkey: 10, endkey: -10, inclusive_end: false }],
  ['t/by_s', { reduce: false }],
  ['t/by_s', { group: true }],
  ['t/by_s', { reduce: false, key: 'apple' }],
  ['t/by_s', { reduce: false, keys: ['zebra', 'ab', 'nope', 'apple'] }],
  ['t/by_a', { reduce: false }],
  ['t/by_a', { group_level: 2 }],
  ['t/by_a', { group: true, startkey: ['a'], endkey: ['b', {}] }],
  ['t/by_o', { include_docs: true, limit: 20 }],
  ['t/by_o', { startkey: { k: 'apple' }, endkey: { k: 'zebra' } }],
  ['t/mixed', { reduce: false }],
  ['t/mixed', { group: true }],
  ['t/tags', { group_level: 1 }],
  ['t/tags', { reduce: false, startkey: ['y', 'a'], endkey: ['y', 'z'], startkey_docid: 'd0100' }],
];

// PouchDB's local index decodes number keys from its string encoding,
// which can add float noise (-39 comes back as -39.00000000000001).
const norm = (v) =>
  typeof v === 'number' ? Number(v.toPrecision(12))
  : Array.isArray(v) ? v.map(norm)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]))
  : v;

const strip = (r) => {
  const rows = r.rows.map((row) => {
    const out = { key: norm(row.key), value: norm(row.value) };
    if ('id' in row) out.id = row.id;
    if (row.doc) out.doc = { _id: row.doc._id, n: row.doc.n };
    return out;
  });
  return { rows, total_rows: r.total_rows, offset: r.offset };
};

try {
  const local = new Local('v');
  await local.bulkDocs(docs);
  await local.put(ddoc);
  const r = await remote.bulkDocs(docs);
  assert.ok(r.every((x) => x.ok));
  await remote.put(ddoc);
  for (const [view, opts] of queries) {
    const mine = strip(await local.query(view, opts));
    const theirs = strip(await remote.query(view, opts));
    assert.deepEqual(theirs.rows, mine.rows, `${view} ${JSON.stringify(opts)}`);
    if (mine.total_rows !== undefined) {
      assert.equal(theirs.total_rows, mine.total_rows, `${view} total_rows`);
    }
  }
  console.log(`${queries.length} queries: Settee's views match PouchDB's local map/reduce`);
  // Filtered replication runs the JavaScript filter on Settee.
  await remote.put({ _id: '_design/f', filters: { cheap: 'function (doc, req) { return doc.n < Number(req.query.below); }' } });
  const target = new Local('filtered');
  const rep = await target.replicate.from(remote, { filter: 'f/cheap', query_params: { below: -40 } });
  const want = docs.filter((d) => d.n < -40).map((d) => d._id).sort();
  const got = (await target.allDocs()).rows.map((r) => r.id).sort();
  assert.deepEqual(got, want);
  assert.equal(rep.docs_written, want.length);
  console.log(`filtered replication: ${want.length} of ${docs.length} documents`);
} finally {
  await remote.destroy().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
