// One PouchDB replication between two HTTP databases, as an app runs it.
// Usage: node pouchdb-replicate.mjs SOURCE_URL TARGET_URL
// Prints PouchDB's result ({docs_read, docs_written, last_seq, ...}) as
// JSON on the last line, so a test can see where PouchDB started: a
// replication that honours an existing checkpoint reads only new changes.
import PouchDB from 'pouchdb';

const [source, target] = process.argv.slice(2);
if (!source || !target) throw new Error('usage: pouchdb-replicate.mjs SOURCE_URL TARGET_URL');
const result = await PouchDB.replicate(new PouchDB(source), new PouchDB(target), { batch_size: 500 });
console.log(JSON.stringify({
  ok: result.ok,
  docs_read: result.docs_read,
  docs_written: result.docs_written,
  doc_write_failures: result.doc_write_failures,
  last_seq: result.last_seq,
  status: result.status,
}));
