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
        json!({
            "min": self.min,
            "max": self.max,
            "arithmetic_mean": self.mean(),
            "median": self.percentile(500),
            "variance": self.variance(),
            "standard_deviation": self.variance().sqrt(),
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
}

/// What a metric counts, as CouchDB describes it.
fn describe(name: &str) -> &'static str {
    match name {
        "couchdb.httpd.requests" => "number of HTTP requests",
        "couchdb.database_reads" => "number of times a document was read from a database",
        "couchdb.database_writes" => "number of times a database was changed",
        "couchdb.request_time" => "length of a request inside CouchDB without MochiWeb",
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

    pub fn merge(&mut self, other: &Stats) {
        for (k, v) in &other.counters {
            self.count(k, *v);
        }
        for (k, h) in &other.histograms {
            self.histograms.entry(k.clone()).or_default().merge(h);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.histograms.is_empty()
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
