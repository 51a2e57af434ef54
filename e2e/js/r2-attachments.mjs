// Large attachments in an R2 bucket, on Miniflare (wrangler's local
// simulation of Workers, Durable Objects and R2) running the built bundle.
// Usage: node r2-attachments.mjs BUNDLE_DIR STATE_DIR
import { Miniflare } from 'miniflare';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [bundle, state] = process.argv.slice(2);
const step = (msg) => console.log(`r2: ${msg}`);
const md5 = (b) => 'md5-' + createHash('md5').update(b).digest('base64');
const THRESHOLD = 100_000;

const mf = new Miniflare({
  modulesRoot: bundle,
  modules: [
    { type: 'ESModule', path: join(bundle, 'index.js'), contents: readFileSync(join(bundle, 'index.js')) },
    { type: 'CompiledWasm', path: join(bundle, 'index_bg.wasm'), contents: readFileSync(join(bundle, 'index_bg.wasm')) },
  ],
  compatibilityDate: '2026-04-01',
  durableObjects: {
    DB: { className: 'DbActor', useSQLite: true },
    CATALOG: { className: 'CatalogActor', useSQLite: true },
    REPLICATOR: { className: 'ReplicatorActor', useSQLite: true },
  },
  r2Buckets: ['ATTACHMENTS'],
  bindings: {
    COUCHDB_USER: 'admin',
    COUCHDB_PASSWORD: 'r2-pw',
    COUCHDB_SECRET: 'r2-secret',
    R2_ATTACHMENT_THRESHOLD: String(THRESHOLD),
  },
  defaultPersistRoot: state,
});

const auth = { authorization: 'Basic ' + Buffer.from('admin:r2-pw').toString('base64') };
const base = (await mf.ready).toString().replace(/\/$/, '');
const req = async (method, path, body, headers = {}) => {
  const r = await fetch(base + path, { method, body, headers: { ...auth, ...headers } });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
};
const json = async (method, path, body) => {
  const r = await req(method, path, body && JSON.stringify(body), { 'content-type': 'application/json' });
  return { status: r.status, body: JSON.parse(r.bytes.toString() || 'null') };
};
const bucket = await mf.getR2Bucket('ATTACHMENTS');
const keys = async () => (await bucket.list()).objects.map((o) => [o.key, o.size]);

try {
  assert.equal((await json('PUT', '/files')).status, 201);
  const big = randomBytes(3 << 20);
  let r = await req('PUT', '/files/doc/big.bin', big, { 'content-type': 'application/octet-stream' });
  assert.equal(r.status, 201, r.bytes.toString());
  const rev1 = JSON.parse(r.bytes).rev;
  r = await req('PUT', `/files/doc/small.txt?rev=${rev1}`, Buffer.from('small'), { 'content-type': 'text/plain' });
  assert.equal(r.status, 201);
  const stored = await keys();
  assert.equal(stored.length, 1, JSON.stringify(stored));
  assert.match(stored[0][0], new RegExp(`^files/[^/]+/${md5(big).replace(/[+/]/g, '\\$&')}$`));
  assert.equal(stored[0][1], big.length);
  step('the large content is in the bucket, the small one is not');

  r = await req('GET', '/files/doc/big.bin');
  assert.equal(r.status, 200);
  assert.ok(r.bytes.equals(big), 'bytes back from R2');
  r = await req('GET', '/files/doc/big.bin', undefined, { range: 'bytes=1000-1999' });
  assert.equal(r.status, 206);
  assert.ok(r.bytes.equals(big.subarray(1000, 2000)));
  const doc = (await json('GET', '/files/doc?attachments=true')).body;
  assert.ok(Buffer.from(doc._attachments['big.bin'].data, 'base64').equals(big));
  assert.equal(doc._attachments['small.txt'].data, Buffer.from('small').toString('base64'));
  assert.equal((await req('GET', '/files/doc/small.txt')).bytes.toString(), 'small');
  step('served from the bucket: whole, ranges, inline');

  // Orphans go at compaction.
  const cur = (await json('GET', '/files/doc')).body;
  assert.equal((await json('DELETE', `/files/doc?rev=${cur._rev}`)).status, 200);
  assert.equal((await json('POST', '/files/_compact', {})).status, 202);
  assert.deepEqual(await keys(), []);
  step('compaction removed the orphan');

  // A deleted database takes its contents with it.
  await req('PUT', '/files/other/big2.bin', randomBytes(200_000), { 'content-type': 'application/octet-stream' });
  assert.equal((await keys()).length, 1);
  assert.equal((await json('DELETE', '/files')).status, 200);
  assert.deepEqual(await keys(), []);
  step('deleting the database emptied its prefix');
  console.log('r2: ok');
} finally {
  await mf.dispose();
}
