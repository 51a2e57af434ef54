// PouchDB syncing with a members-only Settee database as a non-admin user:
// once with a cookie session (POST /_session, then sync), once with basic
// auth in the URL. Usage: node pouchdb-auth.mjs http://127.0.0.1:PORT USER PASSWORD
import PouchDB from 'pouchdb';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, user, password] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'settee-pouch-auth-'));
const Local = PouchDB.defaults({ prefix: dir + '/' });
const step = (msg) => console.log(`pouchdb-auth: ${msg}`);

async function syncRoundTrip(remote, label) {
  const local = new Local(label);
  await local.bulkDocs(Array.from({ length: 50 }, (_, i) => ({ _id: `${label}-${i}`, i })));
  const r = await local.sync(remote);
  assert.equal(r.push.docs_written, 50);
  const other = new Local(`${label}-copy`);
  await other.replicate.from(remote);
  const ids = (await other.allDocs()).rows.map((row) => row.id).filter((id) => id.startsWith(label));
  assert.equal(ids.length, 50);
  await Promise.all([local.close(), other.close()]);
}

try {
  // 1. Cookie session: log in, then send the cookie with every request.
  const login = await fetch(`${base}/_session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: user, password }),
  });
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  assert.match(cookie, /^AuthSession=/);
  const viaCookie = new PouchDB(`${base}/members-only`, {
    skip_setup: true,
    fetch: (url, opts) => {
      opts.headers.set('Cookie', cookie);
      return PouchDB.fetch(url, opts);
    },
  });
  await syncRoundTrip(viaCookie, 'cookie');
  step('synced with a cookie session');

  // 2. Basic auth in the URL.
  const u = new URL(`${base}/members-only`);
  u.username = user;
  u.password = password;
  const viaBasic = new PouchDB(u.toString(), { skip_setup: true });
  await syncRoundTrip(viaBasic, 'basic');
  step('synced with basic auth in the URL');

  // 3. Without credentials the database refuses.
  const anon = new PouchDB(`${base}/members-only`, { skip_setup: true });
  await assert.rejects(anon.allDocs());
  assert.equal((await fetch(`${base}/members-only`)).status, 401);
  step('ok');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
