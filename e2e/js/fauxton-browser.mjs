// Fauxton in a real browser: Debian's Chromium, headless, driven by
// playwright-core (which never downloads a browser). Logs in as the admin,
// creates a database, creates and edits a document, creates a view and sees
// its rows, runs a Mango query, starts a one-shot replication, opens the
// admin pages, and fails on any error notification or 5xx answer.
// Usage: node fauxton-browser.mjs BASE_URL ADMIN PASSWORD SHOT_DIR
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const [base, user, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const auth = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const db = 'fauxton-db';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(20000);

const failures = [];
page.on('response', (r) => {
  if (r.status() >= 500) failures.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));

let step = 0;
/** Waits for the page to settle, saves its screenshot and fails on an error shown. */
async function done(name) {
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(300);
  step += 1;
  await page.screenshot({ path: `${shots}/${String(step).padStart(2, '0')}-${name}.png` });
  const errors = await page.locator('.Toastify__toast--error, .alert-error, .errorDiv').allInnerTexts();
  assert.deepEqual(errors, [], `${name}: error shown`);
  assert.deepEqual(failures, [], `${name}: server errors`);
  console.log(`ok ${step} ${name}`);
}

/** Settee's own view of a document, to check what the browser did. */
async function rest(path, method = 'GET', body = undefined) {
  const headers = { authorization: auth, 'content-type': 'application/json' };
  const r = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

async function eventually(what, check) {
  for (let i = 0; i < 100; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Replaces the text of the page's Ace editor (number `n` on the page). */
async function setEditor(text, n = 0) {
  await page.waitForSelector('.ace_editor');
  await page.evaluate(([t, i]) => {
    document.querySelectorAll('.ace_editor')[i].env.editor.setValue(t, 1);
  }, [text, n]);
}

// Log in.
await page.goto(`${base}/_utils/`);
await page.waitForSelector('#username');
await page.fill('#username', user);
await page.fill('#password', password);
await page.click('#submit');
await page.waitForSelector('text=You have been logged in.');
await done('logged-in');

// Create a database.
await page.click('.add-new-database-btn');
await page.fill('#js-new-database-name', db);
await page.click('#js-create-database');
await page.waitForURL(new RegExp(`#/?database/${db}/_all_docs`));
await done('database-created');
assert.equal((await rest(`/${db}`)).status, 200);

// Create a document, then edit it.
await page.goto(`${base}/_utils/#database/${db}/_new`);
await setEditor(JSON.stringify({ _id: 'doc1', title: 'hello', n: 1 }, null, 2));
await page.click('button.save-doc');
await eventually('the new document', async () => (await rest(`/${db}/doc1`)).status === 200);
await done('document-created');
let doc = (await rest(`/${db}/doc1`)).body;
assert.equal(doc.title, 'hello');

await page.goto(`${base}/_utils/#database/${db}/doc1`);
await page.waitForSelector('.ace_editor');
await page.waitForFunction(() => document.querySelector('.ace_editor').env.editor.getValue().includes('_rev'));
const shown = JSON.parse(await page.evaluate(() => document.querySelector('.ace_editor').env.editor.getValue()));
assert.equal(shown._rev, doc._rev);
await setEditor(JSON.stringify({ ...shown, n: 2 }, null, 2));
await page.click('button.save-doc');
await eventually('the edit', async () => (await rest(`/${db}/doc1`)).body.n === 2);
await done('document-edited');
doc = (await rest(`/${db}/doc1`)).body;
assert.match(doc._rev, /^2-/);

// An attachment uploaded from the document page.
await page.goto(`${base}/_utils/#database/${db}/doc1`);
await page.click('button[title="Upload Attachment"]');
await page.setInputFiles('input[type=file]', {
  name: 'note.txt',
  mimeType: 'text/plain',
  buffer: Buffer.from('attached from Fauxton'),
});
await page.click('#upload-btn');
await eventually('the attachment', async () => (await rest(`/${db}/doc1`)).body._attachments?.['note.txt']);
await done('attachment-uploaded');
const att = await fetch(`${base}/${db}/doc1/note.txt`, { headers: { authorization: auth } });
assert.equal(await att.text(), 'attached from Fauxton');
assert.match(att.headers.get('content-type'), /^text\/plain/);

// A document deleted from its page.
await rest(`/${db}/gone`, 'PUT', { doomed: true });
await page.goto(`${base}/_utils/#database/${db}/gone`);
// After an upload Fauxton 1.2.6 renders nothing for a hash change to
// another document (no request fails, no error); a reload draws it.
await page.reload();
await page.click('button[title="Delete"]');
await page.getByRole('button', { name: 'Delete Document' }).click();
await eventually('the deletion', async () => (await rest(`/${db}/gone`)).status === 404);
await done('document-deleted');

// A conflicted document: the table flags it, the revision browser opens.
const branch = (rev, n) => ({ _id: 'torn', _rev: rev, n, _revisions: { start: 1, ids: [rev.slice(2)] } });
await rest(`/${db}/_bulk_docs`, 'POST', {
  new_edits: false,
  docs: [branch('1-aaaa', 1), branch('1-bbbb', 2)],
});
await page.goto(`${base}/_utils/#database/${db}/_all_docs`);
await page.reload();
await page.getByRole('button', { name: 'Table' }).click();
await page.locator('.tableview-conflict').first().waitFor();
assert.equal(await page.locator('.tableview-conflict').count(), 1, 'only the torn document');
await done('conflict-flagged');
await page.goto(`${base}/_utils/#database/${db}/torn/conflicts`);
await page.reload();
await page.getByText('1-aaaa').first().waitFor();
await done('revision-browser');
await page.getByRole('button', { name: 'Delete Other Conflicts' }).click();
const confirm = page.locator('.modal-dialog button.btn-primary, .modal-dialog button.btn-danger');
if (await confirm.count()) await confirm.first().click();
await eventually('the conflict resolved', async () => {
  const torn = (await rest(`/${db}/torn?conflicts=true`)).body;
  return torn._rev === '1-bbbb' && !torn._conflicts;
});
await done('conflict-resolved');

// A design document with a map/reduce view, built and queried.
await rest(`/${db}/doc2`, 'PUT', { title: 'world', n: 5 });
await page.goto(`${base}/_utils/#database/${db}/new_view`);
await page.waitForSelector('#new-ddoc');
await page.fill('#new-ddoc', 'fx');
await page.fill('#index-name', 'by_n');
await setEditor('function (doc) {\n  emit(doc.n, doc.title);\n}');
await page.selectOption('#reduce-function-selector', '_count');
await page.click('#save-view');
await eventually('the design document', async () => (await rest(`/${db}/_design/fx`)).status === 200);
await page.waitForURL(/_view\/by_n/);
await page.waitForSelector('text=world');
await done('view-rows');
const ddoc = (await rest(`/${db}/_design/fx`)).body;
assert.equal(ddoc.views.by_n.reduce, '_count');
const reduced = (await rest(`/${db}/_design/fx/_view/by_n`)).body;
assert.deepEqual(reduced.rows, [{ key: null, value: 3 }]);

// A Mango query and its explanation.
await page.goto(`${base}/_utils/#database/${db}/_find`);
await page.waitForSelector('#create-index-btn');
await setEditor(JSON.stringify({ selector: { n: { $gt: 3 } } }, null, 2));
const found = page.waitForResponse(
  (r) => r.url().endsWith('/_find') && (r.request().postData() || '').includes('"$gt":3'),
);
await page.click('#create-index-btn');
const answer = await (await found).json();
assert.deepEqual(answer.docs.map((d) => d._id), ['doc2']);
await page.waitForSelector('text=doc2');
await done('mango-query');
const explained = page.waitForResponse((r) => r.url().endsWith('/_explain'));
await page.click('#explain-btn');
assert.equal((await explained).status(), 200);
await done('mango-explain');

// A one-shot replication into a new database, started from the form.
const copy = `${db}-copy`;
await page.goto(`${base}/_utils/#/replication/_create`);
await page.waitForSelector('#replication-source');
await page.selectOption('#replication-source', 'REPLICATION_SOURCE_LOCAL');
// The source name is a type-ahead over _all_dbs.
await page.getByText('Database name', { exact: true }).first().click();
await page.keyboard.type(db);
await page.getByText(db, { exact: true }).last().click();
await page.selectOption('select#replication-target >> nth=0', 'REPLICATION_TARGET_NEW_LOCAL_DATABASE');
await page.fill('.replication__new-input', copy);
for (const side of ['source', 'target']) {
  await page.selectOption(`#select-replication-${side}-auth`, 'BASIC_AUTH');
  await page.fill(`#replication-${side}-auth-username`, user);
  await page.fill(`#replication-${side}-auth-password`, password);
}
await done('replication-form');
await page.click('#replicate');
await eventually('the replicated copy', async () => {
  const r = await rest(`/${copy}/doc2`);
  return r.status === 200 && r.body.title === 'world';
});
await done('replication-started');
const jobs = (await rest('/_replicator/_all_docs')).body.rows.filter((r) => !r.id.startsWith('_design/'));
assert.equal(jobs.length, 1, 'Fauxton wrote one _replicator document');
await page.goto(`${base}/_utils/#/replication`);
await eventually('the job shown as completed', async () => {
  await page.reload();
  await page.waitForSelector(`text=${copy}`);
  return page.getByText(/^completed$/i).first().isVisible();
});
await done('replication-list');

// The copy deleted from its page's menu, confirmed by name.
await page.goto(`${base}/_utils/#database/${copy}/_all_docs`);
await page.reload();
await page.click('.faux-header__doc-header-dropdown-toggle');

await page.locator('.faux-header__doc-header-dropdown-itemwrapper, li, a').filter({ hasText: /^\s*Delete\s*$/ }).last().click();
await page.fill('.delete-db-modal input', copy);
await page.click('.delete-db-modal button.delete');
await eventually('the deleted database', async () => (await rest(`/${copy}`)).status === 404);
await done('database-deleted');

// A member added on the Permissions page lands in _security.
await page.goto(`${base}/_utils/#/database/${db}/permissions`);
await page.reload();
await page.locator('input[placeholder="Username"]').nth(1).fill('reader1');
await page.getByRole('button', { name: 'Add User' }).nth(1).click();
await eventually('the member in _security', async () => {
  const sec = (await rest(`/${db}/_security`)).body;
  return (sec.members?.names || []).includes('reader1');
});
await done('member-added');

// The admin pages each open without an error.
for (const [hash, marker] of [
  ['#/activetasks', 'Active Tasks'],
  ['#/_config', 'couchdb'],
  ['#/cors', 'CORS'],
  ['#/verifyinstall', 'Verify'],
  [`#/database/${db}/permissions`, 'Admins'],
  ['#/setup', 'single node'],
  [`#/database/${db}/_changes`, 'doc2'],
]) {
  await page.goto(`${base}/_utils/${hash}`);
  await page.getByText(marker).first().waitFor();
  await done(hash.replace(/\W+/g, '-').replace(/^-|-$/g, ''));
}

// Verify install runs its own checks against the server.
await page.goto(`${base}/_utils/#/verifyinstall`);
await page.click('#start');
await page.waitForSelector('text=Success!');
await done('verify-install-passed');

await browser.close();
console.log('fauxton ok');
