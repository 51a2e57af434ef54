// nano's attachment and multipart APIs against Settee.
// Usage: node nano-attachments.mjs SERVER_URL (with admin credentials)
import Nano from 'nano';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

const nano = Nano(process.argv[2]);
const step = (msg) => console.log(`nano: ${msg}`);
const md5 = (b) => 'md5-' + createHash('md5').update(b).digest('base64');

await nano.db.create('nano-atts');
const db = nano.use('nano-atts');

// attachment.insert creates the document, get reads the bytes back.
const png = randomBytes(70_000);
const r1 = await db.attachment.insert('photo', 'pic.png', png, 'image/png');
assert.equal(r1.ok, true);
const back = await db.attachment.get('photo', 'pic.png');
assert.ok(Buffer.compare(back, png) === 0, 'binary round trip');
step('insert/get binary');

// A second attachment on the same revision chain; the first is kept.
const text = Buffer.from('hello from nano\n'.repeat(1000));
const r2 = await db.attachment.insert('photo', 'notes.txt', text, 'text/plain', { rev: r1.rev });
const doc = await db.get('photo');
assert.deepEqual(Object.keys(doc._attachments).sort(), ['notes.txt', 'pic.png']);
assert.equal(doc._attachments['pic.png'].digest, md5(png));
assert.equal(doc._attachments['notes.txt'].length, text.length);
step('second attachment keeps the first');

// Streams.
const chunks = [];
for await (const c of db.attachment.getAsStream('photo', 'notes.txt')) chunks.push(c);
assert.ok(Buffer.compare(Buffer.concat(chunks), text) === 0);
step('getAsStream');

// destroy removes one attachment; a stale rev is a conflict.
await assert.rejects(db.attachment.destroy('photo', 'pic.png', { rev: r1.rev }), (e) => e.statusCode === 409);
const r3 = await db.attachment.destroy('photo', 'pic.png', { rev: r2.rev });
assert.equal(r3.ok, true);
assert.deepEqual(Object.keys((await db.get('photo'))._attachments), ['notes.txt']);
await assert.rejects(db.attachment.get('photo', 'pic.png'), (e) => e.statusCode === 404);
step('destroy');

// multipart/related in both directions.
const blob = randomBytes(5000);
await db.multipart.insert({ kind: 'album' }, [
  { name: 'a.bin', data: blob, content_type: 'application/octet-stream' },
  { name: 'b.txt', data: 'bee', content_type: 'text/plain' },
], 'album');
// nano hands multipart/related answers back as text.
const got = await db.multipart.get('album');
assert.match(got, /"kind":"album"/);
assert.match(got, /\r\nbee\r\n/);
const stored = await db.get('album', { attachments: true });
assert.equal(Buffer.from(stored._attachments['a.bin'].data, 'base64').compare(blob), 0);
assert.equal(Buffer.from(stored._attachments['b.txt'].data, 'base64').toString(), 'bee');
step('multipart insert/get');
console.log('nano: ok');
