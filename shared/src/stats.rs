//! Node statistics as CouchDB's `/_node/{node}/_stats` and `_prometheus`
//! show them. Each isolate counts what happens in it (the router: requests,
//! methods, status codes, request time; a database actor: reads and
//! writes) into a [`Stats`] of deltas, and hands them to the catalog now
//! and then (with a call it makes anyway, or a timer), never on every
//! request. The catalog merges the deltas into the node's totals; gauges
//! (replication jobs) are read when asked.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Upper bounds (ms) of the request-time histogram's bins; the last bin
/// takes everything longer.
const BINS_MS: [u64; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 60_000,
];

/// The least duration the logarithmic means count (a microsecond).
const MIN_MS: f64 = 0.001;

/// A distribution of durations in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
    /// Counts per bin of [`BINS_MS`], plus one for longer.
    pub bins: Vec<u64>,
    /// Sums of the logarithms, reciprocals, cubes and fourth powers, for
    /// the geometric and harmonic means, skewness and kurtosis CouchDB
    /// reports (durations below a microsecond count as one).
    #[serde(default)]
    pub sum_ln: f64,
    #[serde(default)]
    pub sum_inv: f64,
    #[serde(default)]
    pub sum_cube: f64,
    #[serde(default)]
    pub sum_quad: f64,
}

impl Histogram {
    pub fn record(&mut self, ms: f64) {
        if self.bins.len() != BINS_MS.len() + 1 {
            self.bins = vec![0; BINS_MS.len() + 1];
        }
        let i = BINS_MS
            .iter()
            .position(|&b| ms <= b as f64)
            .unwrap_or(BINS_MS.len());
        self.bins[i] += 1;
        if self.n == 0 || ms < self.min {
            self.min = ms;
        }
        if ms > self.max {
            self.max = ms;
        }
        self.n += 1;
        self.sum += ms;
        self.sum_sq += ms * ms;
        self.sum_cube += ms.powi(3);
        self.sum_quad += ms.powi(4);
        let positive = ms.max(MIN_MS);
        self.sum_ln += positive.ln();
        self.sum_inv += 1.0 / positive;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.sum_ln += other.sum_ln;
        self.sum_inv += other.sum_inv;
        self.sum_cube += other.sum_cube;
        self.sum_quad += other.sum_quad;
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    fn variance(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }

    /// Skewness and excess kurtosis (as CouchDB's `bear` reports them),
    /// from the raw moments.
    fn shape(&self) -> (f64, f64) {
        if self.n < 2 {
            return (0.0, 0.0);
        }
        let n = self.n as f64;
        let (m, e2, e3, e4) = (
            self.sum / n,
            self.sum_sq / n,
            self.sum_cube / n,
            self.sum_quad / n,
        );
        let var = e2 - m * m;
        if var <= f64::EPSILON {
            return (0.0, 0.0);
        }
        let m3 = e3 - 3.0 * m * e2 + 2.0 * m.powi(3);
        let m4 = e4 - 4.0 * m * e3 + 6.0 * m * m * e2 - 3.0 * m.powi(4);
        (m3 / var.powf(1.5), m4 / (var * var) - 3.0)
    }

    /// The bin bound at or below which `p` per mille of the values lie.
    fn percentile(&self, per_mille: u64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let want = (self.n * per_mille).div_ceil(1000);
        let mut seen = 0;
        for (i, c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= want {
                return BINS_MS
                    .get(i)
                    .map_or(self.max, |&b| (b as f64).min(self.max));
            }
        }
        self.max
    }

    /// CouchDB's histogram `value` object.
    fn to_json(&self) -> Value {
        let pct: Vec<Value> = [
            (50, 500),
            (75, 750),
            (90, 900),
            (95, 950),
            (99, 990),
            (999, 999),
        ]
        .iter()
        .map(|(label, pm)| json!([label, self.percentile(*pm)]))
        .collect();
        let bins: Vec<Value> = BINS_MS
            .iter()
            .zip(&self.bins)
            .map(|(b, c)| json!([b, c]))
            .collect();
        let (skewness, kurtosis) = self.shape();
        let (geometric, harmonic) = match self.n {
            0 => (0.0, 0.0),
            n => ((self.sum_ln / n as f64).exp(), n as f64 / self.sum_inv),
        };
        json!({
            "min": self.min,
            "max": self.max,
            "arithmetic_mean": self.mean(),
            "geometric_mean": geometric,
            "harmonic_mean": harmonic,
            "median": self.percentile(500),
            "variance": self.variance(),
            "standard_deviation": self.variance().sqrt(),
            "skewness": skewness,
            "kurtosis": kurtosis,
            "percentile": pct,
            "histogram": bins,
            "n": self.n,
        })
    }
}

/// Counters and histograms by CouchDB's dotted metric name
/// (`couchdb.httpd_request_methods.GET`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub counters: BTreeMap<String, u64>,
    pub histograms: BTreeMap<String, Histogram>,
    /// When each database's actor last served a request (seconds): the
    /// runtime unloads idle actors without telling, so a database counts as
    /// open while it served one within [`OPEN_WINDOW_SECS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub open: BTreeMap<String, u64>,
}

/// How long after its last request a database still counts as open.
pub const OPEN_WINDOW_SECS: u64 = 300;

/// What a metric counts, as CouchDB describes it.
fn describe(name: &str) -> &'static str {
    match name {
        "couchdb.httpd.requests" => "number of HTTP requests",
        "couchdb.database_reads" => "number of times a document was read from a database",
        "couchdb.database_writes" => "number of times a database was changed",
        "couchdb.request_time" => "length of a request inside CouchDB without MochiWeb",
        "couchdb.open_databases" => "number of open databases",
        n if n.starts_with("couchdb.httpd_request_methods.") => "number of HTTP requests by method",
        n if n.starts_with("couchdb.httpd_status_codes.") => {
            "number of HTTP responses by status code"
        }
        n if n.starts_with("couch_replicator.jobs.") => "number of replication jobs in this state",
        _ => "",
    }
}

impl Stats {
    pub fn count(&mut self, name: &str, by: u64) {
        if by > 0 {
            *self.counters.entry(name.to_string()).or_default() += by;
        }
    }

    pub fn time(&mut self, name: &str, ms: f64) {
        self.histograms
            .entry(name.to_string())
            .or_default()
            .record(ms);
    }

    /// One HTTP request the router answered.
    pub fn request(&mut self, method: &str, status: u16, ms: f64) {
        self.count("couchdb.httpd.requests", 1);
        self.count(&format!("couchdb.httpd_request_methods.{method}"), 1);
        self.count(&format!("couchdb.httpd_status_codes.{status}"), 1);
        self.time("couchdb.request_time", ms);
    }

    /// A database's actor served a request at `now`.
    pub fn seen(&mut self, db: &str, now: u64) {
        let at = self.open.entry(db.to_string()).or_default();
        *at = (*at).max(now);
    }

    /// `couchdb.open_databases` at `now`.
    pub fn open_databases(&self, now: u64) -> u64 {
        let since = now.saturating_sub(OPEN_WINDOW_SECS);
        self.open.values().filter(|&&t| t >= since).count() as u64
    }

    pub fn merge(&mut self, other: &Stats) {
        for (k, v) in &other.counters {
            self.count(k, *v);
        }
        for (k, h) in &other.histograms {
            self.histograms.entry(k.clone()).or_default().merge(h);
        }
        for (db, at) in &other.open {
            self.seen(db, *at);
        }
        // Databases idle past the window are forgotten, so the map stays
        // as small as the set of databases in use.
        if let Some(&newest) = self.open.values().max() {
            let since = newest.saturating_sub(OPEN_WINDOW_SECS);
            self.open.retain(|_, t| *t >= since);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.histograms.is_empty() && self.open.is_empty()
    }

    /// `/_node/{node}/_stats`: nested by the name's parts, each metric
    /// `{"value", "type", "desc"}`; `gauges` are added as they are.
    pub fn to_json(&self, gauges: &[(String, u64)]) -> Value {
        let mut root = Map::new();
        let mut put = |name: &str, metric: Value| {
            let mut node = &mut root;
            let parts: Vec<&str> = name.split('.').collect();
            for p in &parts[..parts.len() - 1] {
                node = node
                    .entry(p.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("sections are objects");
            }
            node.insert(parts[parts.len() - 1].to_string(), metric);
        };
        for (k, v) in &self.counters {
            put(
                k,
                json!({"value": v, "type": "counter", "desc": describe(k)}),
            );
        }
        for (k, h) in &self.histograms {
            put(
                k,
                json!({"value": h.to_json(), "type": "histogram", "desc": describe(k)}),
            );
        }
        for (k, v) in gauges {
            put(k, json!({"value": v, "type": "gauge", "desc": describe(k)}));
        }
        Value::Object(root)
    }

    /// `/_node/{node}/_prometheus`: the same metrics in Prometheus' text
    /// format, named as CouchDB's `couch_prometheus` names them (counters
    /// `_total`; methods and codes as labels; times in seconds).
    pub fn prometheus(&self, gauges: &[(String, u64)]) -> String {
        let mut out = String::new();
        let mut labelled: BTreeMap<&str, Vec<(String, u64)>> = BTreeMap::new();
        for (k, v) in &self.counters {
            if let Some(m) = k.strip_prefix("couchdb.httpd_request_methods.") {
                labelled
                    .entry("couchdb_httpd_request_methods")
                    .or_default()
                    .push((format!("method=\"{m}\""), *v));
            } else if let Some(c) = k.strip_prefix("couchdb.httpd_status_codes.") {
                labelled
                    .entry("couchdb_httpd_status_codes")
                    .or_default()
                    .push((format!("code=\"{c}\""), *v));
            } else {
                let name = format!("{}_total", k.replace('.', "_"));
                out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
            }
        }
        for (name, rows) in labelled {
            out.push_str(&format!("# TYPE {name} counter\n"));
            for (label, v) in rows {
                out.push_str(&format!("{name}{{{label}}} {v}\n"));
            }
        }
        for (k, h) in &self.histograms {
            let name = format!("{}_seconds", k.replace('.', "_"));
            out.push_str(&format!("# TYPE {name} summary\n"));
            for (q, pm) in [
                ("0.5", 500),
                ("0.75", 750),
                ("0.9", 900),
                ("0.95", 950),
                ("0.99", 990),
                ("0.999", 999),
            ] {
                out.push_str(&format!(
                    "{name}{{quantile=\"{q}\"}} {}\n",
                    h.percentile(pm) / 1000.0
                ));
            }
            out.push_str(&format!(
                "{name}_sum {}\n{name}_count {}\n",
                h.sum / 1000.0,
                h.n
            ));
        }
        for (k, v) in gauges {
            let name = k.replace('.', "_");
            out.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_databases_are_those_seen_within_the_window() {
        let mut a = Stats::default();
        a.seen("x", 1000);
        let mut b = Stats::default();
        b.seen("y", 1100);
        b.seen("x", 900);
        a.merge(&b);
        assert_eq!(a.open["x"], 1000, "the latest sighting wins");
        assert_eq!(a.open_databases(1100), 2);
        assert_eq!(a.open_databases(1000 + OPEN_WINDOW_SECS + 1), 1);
        let mut late = Stats::default();
        late.seen("z", 2000);
        a.merge(&late);
        assert_eq!(
            a.open.keys().collect::<Vec<_>>(),
            ["z"],
            "idle ones are forgotten"
        );
        let back: Stats = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn histograms_report_couchdbs_shape_figures() {
        let mut h = Histogram::default();
        for ms in [1.0, 2.0, 4.0, 8.0] {
            h.record(ms);
        }
        let v = h.to_json();
        let close = |k: &str, want: f64| {
            let got = v[k].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{k}: {got} != {want}");
        };
        close("geometric_mean", 64f64.powf(0.25));
        close("harmonic_mean", 4.0 / (1.0 + 0.5 + 0.25 + 0.125));
        // Population moments of 1, 2, 4, 8 (mean 3.75).
        let d: Vec<f64> = [1.0, 2.0, 4.0, 8.0].iter().map(|x| x - 3.75).collect();
        let m = |k: i32| d.iter().map(|x| x.powi(k)).sum::<f64>() / 4.0;
        close("skewness", m(3) / m(2).powf(1.5));
        close("kurtosis", m(4) / (m(2) * m(2)) - 3.0);
        let mut merged = Histogram::default();
        let mut other = Histogram::default();
        merged.record(1.0);
        merged.record(2.0);
        other.record(4.0);
        other.record(8.0);
        merged.merge(&other);
        assert_eq!(merged.to_json(), v, "merging keeps every figure");
    }

    #[test]
    fn counts_merge_and_render() {
        let mut a = Stats::default();
        a.request("GET", 200, 3.0);
        a.request("GET", 404, 40.0);
        let mut b = Stats::default();
        b.request("PUT", 201, 700.0);
        b.count("couchdb.database_writes", 5);
        a.merge(&b);
        assert_eq!(a.counters["couchdb.httpd.requests"], 3);
        assert_eq!(a.counters["couchdb.httpd_request_methods.GET"], 2);
        let h = &a.histograms["couchdb.request_time"];
        assert_eq!((h.n, h.min, h.max), (3, 3.0, 700.0));
        assert!((h.mean() - 247.666).abs() < 0.01);
        assert_eq!(h.percentile(500), 50.0, "the bin bound of the middle value");
        assert_eq!(h.percentile(999), 700.0, "never above the largest value");

        let gauges = vec![("couch_replicator.jobs.running".to_string(), 2)];
        let j = a.to_json(&gauges);
        assert_eq!(j["couchdb"]["httpd_request_methods"]["GET"]["value"], 2);
        assert_eq!(
            j["couchdb"]["httpd_request_methods"]["GET"]["type"],
            "counter"
        );
        assert_eq!(j["couchdb"]["httpd_status_codes"]["201"]["value"], 1);
        assert_eq!(j["couchdb"]["database_writes"]["value"], 5);
        assert_eq!(j["couchdb"]["request_time"]["type"], "histogram");
        assert_eq!(j["couchdb"]["request_time"]["value"]["n"], 3);
        assert_eq!(j["couch_replicator"]["jobs"]["running"]["type"], "gauge");

        let p = a.prometheus(&gauges);
        assert!(
            p.contains("couchdb_httpd_request_methods{method=\"GET\"} 2\n"),
            "{p}"
        );
        assert!(p.contains("couchdb_httpd_status_codes{code=\"404\"} 1\n"));
        assert!(p.contains("couchdb_database_writes_total 5\n"));
        assert!(p.contains("couchdb_request_time_seconds_count 3\n"));
        assert!(p.contains("couch_replicator_jobs_running 2\n"));

        let back: Stats = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
