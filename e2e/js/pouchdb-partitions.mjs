// PouchDB (HTTP, pouchdb-find, and LevelDB replication) against a
// partitioned Settee database, as an app keeping one partition per sensor
// would use it. Usage: node pouchdb-partitions.mjs SERVER_URL
import PouchDB from 'pouchdb';
import PouchFind from 'pouchdb-find';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

PouchDB.plugin(PouchFind);
const base = process.argv[2];
if (!base) throw new Error('usage: pouchdb-partitions.mjs SERVER_URL');
const step = (msg) => console.log(`pouchdb-partitions: ${msg}`);
const dir = mkdtempSync(join(tmpdir(), 'settee-pouch-parts-'));
const Local = PouchDB.defaults({ prefix: dir + '/' });

// PouchDB creates a missing database unpartitioned: create it first.
async function createPartitioned(name) {
  const db = new PouchDB(`${base}/${name}`, { skip_setup: true });
  const res = await db.fetch(`/${name}?partitioned=true`, { method: 'PUT' });
  assert.equal(res.status, 201, await res.text());
  assert.deepEqual((await db.info()).props, { partitioned: true });
  return db;
}
const json = async (res) => {
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
};

try {
  const db = await createPartitioned('pouch-parts');
  const sensors = ['sensor-a', 'sensor-b', 'sensor-c'];
  const docs = [];
  for (const s of sensors) {
    for (let i = 0; i < 40; i++) {
      docs.push({ _id: `${s}:r${String(i).padStart(3, '0')}`, sensor: s, reading: (i * 7) % 50, kind: 'reading' });
    }
  }
  const written = await db.bulkDocs(docs);
  assert.ok(written.every((r) => r.ok), JSON.stringify(written.find((r) => !r.ok)));
  await assert.rejects(db.put({ _id: 'no-partition' }), (e) => e.status === 400 && e.name === 'illegal_docid');
  step('120 readings in 3 partitions; an id without one refused');

  const range = await db.allDocs({ startkey: 'sensor-b:', endkey: 'sensor-b:\ufff0' });
  assert.equal(range.rows.length, 40);
  const part = await json(await db.fetch('_partition/sensor-b/_all_docs?limit=5'));
  assert.deepEqual(part.rows.map((r) => r.id), range.rows.slice(0, 5).map((r) => r.id));
  const info = await json(await db.fetch('_partition/sensor-c'));
  assert.equal(info.doc_count, 40);
  step('allDocs and the partition endpoints agree');

  await db.put({
    _id: '_design/readings',
    views: { by_reading: { map: 'function (doc) { emit(doc.reading, null); }', reduce: '_count' } },
  });
  await db.put({
    _id: '_design/global',
    options: { partitioned: false },
    views: { by_reading: { map: 'function (doc) { emit(doc.reading, null); }', reduce: '_count' } },
  });
  const global = await db.query('global/by_reading', { reduce: true });
  assert.equal(global.rows[0].value, 120);
  await assert.rejects(db.query('readings/by_reading'), (e) => e.status === 400 && /partition/.test(e.message));
  const low = await json(await db.fetch('_partition/sensor-a/_design/readings/_view/by_reading?reduce=false&endkey=6'));
  const want = docs.filter((d) => d.sensor === 'sensor-a' && d.reading <= 6).map((d) => d.reading).sort((a, b) => a - b);
  assert.deepEqual(low.rows.map((r) => r.key), want);
  assert.ok(low.rows.every((r) => r.id.startsWith('sensor-a:')));
  const counted = await json(await db.fetch('_partition/sensor-a/_design/readings/_view/by_reading'));
  assert.equal(counted.rows[0].value, 40);
  step('a global view through db.query, a partitioned one through its path');

  assert.equal((await db.createIndex({ index: { fields: ['reading'] }, ddoc: 'idx-reading' })).result, 'created');
  const found = await db.find({ selector: { reading: { $gte: 40 } }, partition: 'sensor-c', sort: ['reading'] });
  const wantC = docs.filter((d) => d.sensor === 'sensor-c' && d.reading >= 40).sort((a, b) => a.reading - b.reading || (a._id < b._id ? -1 : 1));
  assert.deepEqual(found.docs.map((d) => d._id), wantC.map((d) => d._id));
  const explained = await db.explain({ selector: { reading: { $gte: 40 } }, partition: 'sensor-c' });
  assert.equal(explained.index.ddoc, '_design/idx-reading');
  assert.equal(explained.mrargs.partition, 'sensor-c');
  await assert.rejects(db.find({ selector: { reading: { $gte: 40 } }, sort: ['reading'] }), (e) => e.status === 400);
  const globalFind = await db.find({ selector: { reading: { $gte: 40 } }, limit: 200 });
  assert.equal(globalFind.docs.length, docs.filter((d) => d.reading >= 40).length);
  step('pouchdb-find: a partitioned index, used only within a partition');

  // Replicate to a local LevelDB database and back into a new partitioned one.
  const local = new Local('parts');
  const down = await PouchDB.replicate(db, local);
  assert.equal(down.docs_written, 123, "120 readings and 3 design documents");
  await local.put({ _id: 'sensor-d:r000', sensor: 'sensor-d', reading: 1, kind: 'reading' });
  const copy = await createPartitioned('pouch-parts-copy');
  const up = await PouchDB.replicate(local, copy);
  assert.equal(up.docs_written, 124);
  const copied = await json(await copy.fetch('_partition/sensor-d/_all_docs'));
  assert.deepEqual(copied.rows.map((r) => r.id), ['sensor-d:r000']);
  const copiedView = await json(await copy.fetch('_partition/sensor-a/_design/readings/_view/by_reading'));
  assert.equal(copiedView.rows[0].value, 40);
  step('replicated to LevelDB and back into a partitioned copy');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
