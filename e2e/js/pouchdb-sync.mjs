// PouchDB (Node, LevelDB) syncing with Settee over HTTP, as an app would.
// Usage: node pouchdb-sync.mjs http://user:pass@127.0.0.1:PORT
// Exits non-zero with a message on the first difference.
import PouchDB from 'pouchdb';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.argv[2];
if (!base) throw new Error('usage: pouchdb-sync.mjs SERVER_URL');
const dir = mkdtempSync(join(tmpdir(), 'settee-pouch-'));
const Local = PouchDB.defaults({ prefix: dir + '/' });
const remote = new PouchDB(`${base}/pouch-sync`);
const step = (msg) => console.log(`pouchdb-sync: ${msg}`);

async function allWithConflicts(db) {
  const res = await db.allDocs({ include_docs: true, conflicts: true });
  return res.rows.map((r) => ({
    id: r.id,
    rev: r.doc._rev,
    conflicts: (r.doc._conflicts || []).slice().sort(),
    body: { ...r.doc, _rev: undefined, _conflicts: undefined },
  }));
}

try {
  // 1. Push 1,000 docs from a local database.
  const a = new Local('a');
  const docs = Array.from({ length: 1000 }, (_, i) => ({
    _id: `doc-${String(i).padStart(4, '0')}`,
    n: i,
    tags: ['t' + (i % 7)],
    nested: { even: i % 2 === 0, s: 'é✓ ' + i },
  }));
  await a.bulkDocs(docs);
  const push = await a.replicate.to(remote);
  assert.equal(push.ok, true);
  assert.equal(push.docs_written, 1000);
  const info = await remote.info();
  assert.equal(info.doc_count, 1000);
  step('pushed 1000 docs');

  // 2. Pull them into a fresh local database.
  const b = new Local('b');
  const pull = await b.replicate.from(remote);
  assert.equal(pull.docs_written, 1000);
  assert.deepEqual(await allWithConflicts(b), await allWithConflicts(a));
  step('pulled 1000 docs into a fresh PouchDB');

  // 3. Conflicting edits on both sides, then sync both ways.
  const ids = docs.slice(0, 25).map((d) => d._id);
  for (const id of ids) {
    const local = await b.get(id);
    await b.put({ ...local, side: 'local' });
    const onServer = await remote.get(id);
    await remote.put({ ...onServer, side: 'server', extra: [1, 2, 3] });
  }
  // A deletion on one side against an edit on the other.
  const delLocal = await b.get('doc-0100');
  await b.remove(delLocal);
  const editServer = await remote.get('doc-0100');
  await remote.put({ ...editServer, edited: true });
  const sync = await b.sync(remote);
  assert.equal(sync.push.ok, true);
  assert.equal(sync.pull.ok, true);
  const [left, right] = [await allWithConflicts(b), await allWithConflicts(remote)];
  assert.deepEqual(left, right, 'both ends report identical docs, conflicts and winners');
  const conflicted = right.filter((d) => d.conflicts.length > 0);
  assert.equal(conflicted.length, 25, 'each doubly edited doc is in conflict on both ends');
  const survivor = await remote.get('doc-0100');
  assert.equal(survivor.edited, true, 'a live edit wins over a deletion');
  // The same winner is chosen by both implementations.
  for (const id of ids) {
    const [x, y] = [await b.get(id, { conflicts: true }), await remote.get(id, { conflicts: true })];
    assert.equal(x._rev, y._rev, `winner of ${id}`);
    assert.deepEqual(x._conflicts, y._conflicts);
  }
  const openRevs = await remote.get(ids[0], { open_revs: 'all' });
  assert.equal(openRevs.length, 2);
  step('conflicts replicated; identical winners and _conflicts on both ends');

  // 4. Resolve one conflict on the server and sync the resolution back.
  const c = await remote.get(ids[0], { conflicts: true });
  await remote.remove(ids[0], c._conflicts[0]);
  await b.sync(remote);
  assert.equal((await b.get(ids[0], { conflicts: true }))._conflicts, undefined);
  step('conflict resolution synced');

  // 5. Live sync picks up a new server doc within a second.
  const live = b.sync(remote, { live: true, retry: true });
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  await remote.put({ _id: 'live-doc', hello: 'world' });
  let latency = null;
  while (Date.now() - t0 < 5000) {
    try {
      await b.get('live-doc');
      latency = Date.now() - t0;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  live.cancel();
  assert.notEqual(latency, null, 'live sync delivered the new doc');
  step(`live sync delivered a new doc in ${latency} ms`);
  assert.ok(latency < 1000, `live sync took ${latency} ms (> 1 s)`);
  await Promise.all([a.close(), b.close()]);
  step('ok');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
