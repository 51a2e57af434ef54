// PouchDB with pouchdb-find querying Settee over HTTP: createIndex, then
// find with a selector, sort, limit and bookmark paging, as an app would.
// Usage: node pouchdb-find.mjs http://admin:pw@127.0.0.1:PORT/
import PouchDB from 'pouchdb';
import PouchFind from 'pouchdb-find';
import assert from 'node:assert/strict';

PouchDB.plugin(PouchFind);
const base = process.argv[2];
const step = (msg) => console.log(`pouchdb-find: ${msg}`);
const db = new PouchDB(new URL('pouch-find', base).href);

const docs = Array.from({ length: 300 }, (_, i) => ({
  _id: `item-${String(i).padStart(3, '0')}`,
  type: i % 2 ? 'product' : 'review',
  price: (i * 37) % 200,
}));
await db.bulkDocs(docs);
step('300 docs written');

const created = await db.createIndex({ index: { fields: ['type', 'price'] }, ddoc: 'by-type-price', name: 'tp' });
assert.equal(created.result, 'created');
assert.equal((await db.createIndex({ index: { fields: ['type', 'price'] }, ddoc: 'by-type-price', name: 'tp' })).result, 'exists');
const { indexes } = await db.getIndexes();
assert.deepEqual(indexes.map((i) => i.name), ['_all_docs', 'tp']);
step('index created');

const selector = { type: 'product', price: { $lt: 100 } };
const want = docs
  .filter((d) => d.type === 'product' && d.price < 100)
  .sort((a, b) => a.price - b.price || (a._id < b._id ? -1 : 1))
  .map((d) => d._id);

const first = await db.find({ selector, sort: ['type', 'price'], limit: 10 });
assert.equal(first.warning, undefined);
assert.deepEqual(first.docs.map((d) => d._id), want.slice(0, 10));

const seen = [];
let bookmark;
for (;;) {
  const page = await db.find({ selector, sort: [{ type: 'desc' }, { price: 'desc' }], limit: 17, bookmark });
  if (page.docs.length === 0) break;
  seen.push(...page.docs.map((d) => d._id));
  bookmark = page.bookmark;
}
assert.deepEqual(seen, [...want].reverse());
step(`paged ${seen.length} docs by bookmark, descending`);

const explained = await db.explain({ selector, sort: ['type', 'price'] });
assert.equal(explained.index.name, 'tp');
await assert.rejects(db.find({ selector: { price: 1 }, sort: ['price'] }), (e) => e.status === 400 && /no_usable_index/.test(e.name + e.error));
await db.deleteIndex({ ddoc: 'by-type-price', name: 'tp' });
assert.equal((await db.getIndexes()).indexes.length, 1);
step('explain, sort error and deleteIndex ok');
