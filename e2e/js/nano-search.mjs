// nano's full-text search API (db.search) against Settee's `_search`, with
// a Clouseau-style design document: terms, phrases, ranges, sorting,
// bookmarks, facets and include_docs.
// Usage: node nano-search.mjs SERVER_URL (with admin credentials)
import Nano from 'nano';
import assert from 'node:assert/strict';

const nano = Nano(process.argv[2]);
const step = (msg) => console.log(`nano: ${msg}`);

await nano.db.create('nano-search');
const db = nano.use('nano-search');
await db.insert({
  indexes: {
    animals: {
      analyzer: 'standard',
      index: 'function (doc) { index("default", doc.name + " " + doc.about); index("name", doc.name, {store: true}); index("class", doc.class, {facet: true}); index("legs", doc.legs, {facet: true, store: true}); }',
    },
  },
}, '_design/zoo');
await db.bulk({ docs: [
  { _id: 'kiwi', name: 'Kiwi', class: 'bird', legs: 2, about: 'A flightless bird from New Zealand' },
  { _id: 'owl', name: 'Owl', class: 'bird', legs: 2, about: 'A night bird that hunts mice' },
  { _id: 'cat', name: 'Cat', class: 'mammal', legs: 4, about: 'Hunts mice and birds at night' },
  { _id: 'snake', name: 'Snake', class: 'reptile', legs: 0, about: 'Has no legs at all' },
] });

const birds = await db.search('zoo', 'animals', { q: 'bird' });
assert.equal(birds.total_rows, 2, 'the standard analyzer does not stem: birds is not bird');
assert.ok(birds.bookmark, 'a bookmark');
step('term query');

const night = await db.search('zoo', 'animals', { q: '"night bird"' });
assert.deepEqual(night.rows.map((r) => r.id), ['owl']);
step('phrase query');

const hunters = await db.search('zoo', 'animals', { q: 'hunts AND class:mammal', include_docs: true });
assert.deepEqual(hunters.rows.map((r) => r.id), ['cat']);
assert.equal(hunters.rows[0].doc.about, 'Hunts mice and birds at night');
step('boolean query with include_docs');

const legged = await db.search('zoo', 'animals', { q: 'legs:[1 TO Infinity]', sort: '-legs<number>', limit: 2 });
assert.deepEqual(legged.rows.map((r) => r.id), ['cat', legged.rows[1].id]);
assert.equal(legged.rows[0].fields.legs, 4);
const rest = await db.search('zoo', 'animals', { q: 'legs:[1 TO Infinity]', sort: '-legs<number>', limit: 2, bookmark: legged.bookmark });
assert.equal(rest.rows.length, 1);
assert.deepEqual([...legged.rows, ...rest.rows].map((r) => r.id).sort(), ['cat', 'kiwi', 'owl']);
step('numeric range, sort and bookmark paging');

const faceted = await db.search('zoo', 'animals', { q: '*:*', counts: ['class'], ranges: { legs: { none: '[0 TO 0]', some: '{0 TO Infinity]' } }, limit: 0 });
assert.deepEqual(faceted.counts, { class: { bird: 2, mammal: 1, reptile: 1 } });
assert.deepEqual(faceted.ranges, { legs: { none: 1, some: 3 } });
step('counts and ranges facets');

await assert.rejects(db.search('zoo', 'animals', { q: 'name:(kiwi' }), (e) => e.statusCode === 400 && e.error === 'query_parse_error');
step('a malformed query is a 400 query_parse_error');

// Mango text indexes, through nano's createIndex and find.
const created = await db.createIndex({ index: {}, type: 'text', name: 'everything', ddoc: 'mango-text' });
assert.equal(created.result, 'created');
const indexes = await nano.request({ db: 'nano-search', path: '_index' });
assert.ok(indexes.indexes.some((i) => i.type === 'text' && i.name === 'everything'));
const mice = await db.find({ selector: { $text: 'mice' }, fields: ['_id'] });
assert.deepEqual(mice.docs.map((d) => d._id).sort(), ['cat', 'owl']);
step('$text through a Mango text index');

const fourLegs = await db.find({ selector: { legs: { $gt: 2 } }, fields: ['_id'] });
assert.deepEqual(fourLegs.docs.map((d) => d._id), ['cat']);
const explained = await nano.request({ db: 'nano-search', method: 'POST', path: '_explain', body: { selector: { legs: { $gt: 2 } } } });
assert.equal(explained.index.type, 'text');
step('a selector no JSON index serves runs on the text index');

const sortedBirds = await db.find({ selector: { class: 'bird' }, sort: [{ 'name:string': 'desc' }], fields: ['_id'] });
assert.deepEqual(sortedBirds.docs.map((d) => d._id), ['owl', 'kiwi']);
step('sorted by a field of the text index');
