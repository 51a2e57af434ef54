// A Worker whose Durable Object tries SQLite's FTS5 (the engine #17's
// full-text search would stand on) and reports what its SQLite allows
// (each request starts the tables afresh):
// e2e/tests/fts5.rs runs it on workerd and checks the answer.
import { DurableObject } from "cloudflare:workers";

function attempt(f) {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: String(e) };
  }
}

export class Probe extends DurableObject {
  async fetch() {
    const sql = this.ctx.storage.sql;
    return Response.json({
      porter: attempt(() => {
        sql.exec("CREATE VIRTUAL TABLE IF NOT EXISTS t USING fts5(title, body, tokenize = 'porter unicode61')");
        sql.exec("DELETE FROM t");
        sql.exec("INSERT INTO t (title, body) VALUES (?, ?)", "Running dogs", "the quick brown fox jumps");
        sql.exec("INSERT INTO t (title, body) VALUES (?, ?)", "Cats", "lazy cats sleeping all day");
        return sql
          .exec("SELECT title, highlight(t, 1, '[', ']') AS marked FROM t WHERE t MATCH ? ORDER BY bm25(t)", "run OR jump*")
          .toArray();
      }),
      phrase: attempt(() => sql.exec("SELECT title FROM t WHERE t MATCH ?", '"lazy cats" NOT dog').toArray()),
      vocab: attempt(() => {
        sql.exec("CREATE VIRTUAL TABLE IF NOT EXISTS v USING fts5vocab(t, 'row')");
        return sql.exec("SELECT term FROM v ORDER BY term LIMIT 3").toArray();
      }),
      trigram: attempt(() => {
        sql.exec("CREATE VIRTUAL TABLE IF NOT EXISTS g USING fts5(x, tokenize = 'trigram')");
        sql.exec("DELETE FROM g");
        sql.exec("INSERT INTO g (x) VALUES ('settee')");
        return sql.exec("SELECT x FROM g WHERE g MATCH 'tte'").toArray();
      }),
    });
  }
}

export default {
  fetch(request, env) {
    return env.PROBE.get(env.PROBE.idFromName("probe")).fetch(request);
  },
};
