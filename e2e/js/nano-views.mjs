// nano's view, update-handler, show, list and filtered-changes APIs against Settee,
// with the seed guide's design documents.
// Usage: node nano-views.mjs SERVER_URL (with admin credentials)
import Nano from 'nano';
import assert from 'node:assert/strict';

const nano = Nano(process.argv[2]);
const step = (msg) => console.log(`nano: ${msg}`);

await nano.db.create('nano-views');
const db = nano.use('nano-views');
await db.insert({
  views: {
    by_email: { map: 'function(doc) { if (doc.type === "user" && doc.email) { emit(doc.email, doc); } }' },
    by_created_date: { map: 'function(doc) { if (doc.type === "user" && doc.created_at) { emit(doc.created_at, doc); } }' },
    count_by_domain: { map: 'function(doc) { if (doc.email) emit(doc.email.split("@")[1], 1); }', reduce: '_count' },
  },
  updates: {
    touch: 'function(doc, req) { doc.touched = (doc.touched || 0) + 1; return [doc, {json: {touched: doc.touched}}]; }',
  },
  filters: {
    users: 'function(doc, req) { return doc.type === "user"; }',
  },
  shows: {
    card: 'function(doc, req) { provides("json", function() { return {json: {email: doc.email, by: req.query.by}}; }); provides("html", function() { return "<b>" + doc.email + "</b>"; }); }',
  },
  lists: {
    emails: 'function(head, req) { start({headers: {"Content-Type": "application/json"}}); var row, out = []; while ((row = getRow())) out.push(row.key); send(JSON.stringify({total: head.total_rows, emails: out})); }',
  },
}, '_design/users');
await db.bulk({ docs: [
  { _id: 'u1', type: 'user', email: 'john@example.com', created_at: '2024-01-02' },
  { _id: 'u2', type: 'user', email: 'jane@example.com', created_at: '2024-01-01' },
  { _id: 'u3', type: 'user', email: 'bob@other.org', created_at: '2024-03-01' },
  { _id: 'o1', type: 'order' },
] });

const byEmail = await db.view('users', 'by_email', { key: 'john@example.com', include_docs: true });
assert.equal(byEmail.rows.length, 1);
assert.equal(byEmail.rows[0].doc._id, 'u1');
step('view with key and include_docs');

const byDate = await db.view('users', 'by_created_date', { descending: true, limit: 2 });
assert.deepEqual(byDate.rows.map((r) => r.id), ['u3', 'u1']);
step('view descending with limit');

const domains = await db.view('users', 'count_by_domain', { group: true });
assert.deepEqual(domains.rows, [{ key: 'example.com', value: 2 }, { key: 'other.org', value: 1 }]);
const keyed = await db.view('users', 'count_by_domain', { keys: ['other.org'], group: true });
assert.deepEqual(keyed.rows, [{ key: 'other.org', value: 1 }]);
step('grouped _count, with keys (POST)');

const touched = await db.atomic('users', 'touch', 'u2', {});
assert.deepEqual(touched, { touched: 1 });
assert.equal((await db.get('u2')).touched, 1);
step('update handler (atomic)');

const changes = await db.changes({ filter: 'users/users' });
assert.deepEqual(changes.results.map((r) => r.id).sort(), ['u1', 'u2', 'u3']);
step('filtered changes');

const card = await db.show('users', 'card', 'u1', { by: 'nano' });
assert.deepEqual(card, { email: 'john@example.com', by: 'nano' });
step('show function (provides json)');

const listed = await db.viewWithList('users', 'by_email', 'emails', { limit: 2 });
assert.deepEqual(listed, { total: 3, emails: ['bob@other.org', 'jane@example.com'] });
step('list function over a view');

await nano.db.destroy('nano-views');
