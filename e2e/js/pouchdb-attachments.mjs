// PouchDB syncing documents with binary attachments both ways with Settee;
// digests and bytes must match on both ends. Usage: node pouchdb-attachments.mjs SERVER_URL
import PouchDB from 'pouchdb';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'settee-pouch-att-'));
const Local = PouchDB.defaults({ prefix: dir + '/' });
const remote = new PouchDB(`${base}/pouch-atts`);

try {
  const local = new Local('a');
  const blobs = [0, 1, 1000, 300_000].map((n) => randomBytes(n));
  for (const [i, data] of blobs.entries()) {
    await local.put({
      _id: `doc-${i}`,
      _attachments: { [`file-${i}.bin`]: { content_type: 'application/octet-stream', data } },
    });
  }
  const push = await local.replicate.to(remote);
  assert.equal(push.docs_written, blobs.length);
  // Byte-for-byte on the server, over plain HTTP.
  const u = new URL(base);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  for (const [i, data] of blobs.entries()) {
    const r = await fetch(`${u.origin}/pouch-atts/doc-${i}/file-${i}.bin`, { headers: { authorization: auth } });
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);
  }
  console.log('pouchdb-attachments: pushed binary attachments');

  // Add one on the server side, edit one locally, and sync both ways.
  const onServer = await remote.get('doc-2');
  const serverBytes = randomBytes(4096);
  await remote.putAttachment('doc-2', 'added.bin', onServer._rev, serverBytes, 'application/x-added');
  const b = new Local('b');
  await b.replicate.from(remote);
  const doc3 = await b.get('doc-3');
  await b.put({ ...doc3, touched: true });
  await b.sync(remote);
  for (const id of ['doc-0', 'doc-1', 'doc-2', 'doc-3']) {
    const [x, y] = [await b.get(id, { attachments: true }), await remote.get(id, { attachments: true })];
    assert.equal(x._rev, y._rev, id);
    for (const name of Object.keys(y._attachments)) {
      assert.equal(x._attachments[name].digest, y._attachments[name].digest, `${id}/${name}`);
      assert.equal(x._attachments[name].data, y._attachments[name].data, `${id}/${name}`);
    }
  }
  const added = await b.getAttachment('doc-2', 'added.bin');
  assert.deepEqual(Buffer.from(added), serverBytes);
  console.log('pouchdb-attachments: ok');
  await Promise.all([local.close(), b.close()]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
