// The "platform ceiling": the least a Worker + SQLite-backed Durable Object
// can do per request on this workerd. The entry Worker forwards every
// request to one Durable Object (a fixed name, as Settee sends every request
// for one database to that database's actor), which runs exactly one SQLite
// statement: no authentication, no JSON parsing, no CouchDB logic. Settee's
// single-document PUT/GET rates are reported as a fraction of these.
import { DurableObject } from "cloudflare:workers";

export class Kv extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  }

  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (!pathname.startsWith("/k/") || pathname.length <= 3) {
      return new Response("not found\n", { status: 404 });
    }
    const key = decodeURIComponent(pathname.slice(3));
    if (request.method === "GET") {
      const rows = this.sql.exec("SELECT v FROM kv WHERE k = ?", key).toArray();
      return rows.length
        ? new Response(rows[0].v, { headers: { "content-type": "application/json" } })
        : new Response("not found\n", { status: 404 });
    }
    if (request.method === "PUT") {
      const value = await request.text();
      this.sql.exec("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", key, value);
      return new Response('{"ok":true}', {
        status: 201,
        headers: { "content-type": "application/json" },
      });
    }
    return new Response("method not allowed\n", { status: 405 });
  }
}

export default {
  async fetch(request, env) {
    return env.KV.getByName("bench").fetch(request);
  },
};
