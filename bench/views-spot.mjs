// Spot measurement of one server's views (not a comparison; `make bench`
// is): N docs like the bench _bulk_docs set, one design doc, then the
// first query (the index build), _sum over all rows and a grouped _count.
// Usage: node bench/views-spot.mjs N [BASE_URL], BASE_URL defaulting to a
// Settee at http://127.0.0.1:5990 with admin/pw (e.g. settee-serve).
const N = Number(process.argv[2]);
const base = new URL(process.argv[3] ?? "http://admin:pw@127.0.0.1:5990");
const auth = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString("base64")}`;
const origin = base.origin;
const headers = { "content-type": "application/json", authorization: auth };
const db = `/views-spot-${N}`;

async function call(method, p, body) {
  const r = await fetch(origin + p, { method, headers, body: body && JSON.stringify(body) });
  const json = await r.json();
  if (r.status >= 300) throw new Error(`${method} ${p} -> ${r.status} ${JSON.stringify(json)}`);
  return json;
}

async function timed(label, p, show) {
  const t0 = performance.now();
  const r = await call("GET", p);
  console.log(`${label}: ${(performance.now() - t0).toFixed(0)} ms (${show(r)})`);
}

await call("PUT", db);
for (let i = 0; i < N; i += 1000) {
  const docs = [];
  for (let j = i; j < Math.min(i + 1000, N); j++) {
    docs.push({ _id: `b${String(j).padStart(7, "0")}`, type: "bench", n: j, note: "a small JSON document" });
  }
  await call("POST", `${db}/_bulk_docs`, { docs });
}
await call("PUT", `${db}/_design/views`, {
  views: { by_n: { map: "function (doc) { if (doc.type === 'bench') emit([doc.n % 1000, doc.n], doc.n); }", reduce: "_sum" } },
});
await timed(`build, ${N} docs`, `${db}/_design/views/_view/by_n?limit=1&reduce=false`, (r) => `total_rows ${r.total_rows}`);
await timed("_sum over all rows", `${db}/_design/views/_view/by_n`, (r) => `value ${r.rows[0]?.value}`);
await timed("_sum, group_level=1", `${db}/_design/views/_view/by_n?group_level=1`, (r) => `${r.rows.length} groups`);
await call("DELETE", db);
