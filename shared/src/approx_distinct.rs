//! `_approx_count_distinct`'s HyperLogLog++ sketch (2^11 registers, as
//! CouchDB's `hyper:new(11)`: about 2 % standard error, exact in practice
//! for small groups, which HLL++ counts sparsely).
//!
//! Stored reductions keep a sketch per block and merge them, so a sketch
//! must persist: it is stored as text, and keys are hashed by a fixed
//! function of their collation encoding (not `std`'s `DefaultHasher`,
//! which may change between Rust versions). Merging sketches gives the
//! same registers, or the same sparse set, as inserting every key into one
//! (both are a maximum, or a union, over the keys' hashes), and both turn
//! dense at the same size of that set, so the count is the same however
//! the keys were split.

use crate::collate;
use crate::error::{CouchError, CouchResult};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::hash::{BuildHasher, Hasher};

const PRECISION: u8 = 11;

/// The hash a key is counted by: 64-bit FNV-1a over its collation
/// encoding, then MurmurHash3's `fmix64` so the high bits HyperLogLog
/// reads depend on every byte. Stored sketches hold its outputs: it must
/// never change.
pub fn key_hash(encoded: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in encoded {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hands the sketch a [`key_hash`] unchanged: what it inserts is the hash.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Prehashed;

pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = key_hash(bytes);
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for Prehashed {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// A sketch of some keys.
pub struct Sketch(HyperLogLogPlus<u64, Prehashed>);

impl Default for Sketch {
    fn default() -> Self {
        Sketch(HyperLogLogPlus::new(PRECISION, Prehashed).expect("precision 11 is in range"))
    }
}

fn bad_sketch(why: impl std::fmt::Display) -> CouchError {
    CouchError::new(
        500,
        "builtin_reduce_error",
        format!("bad stored sketch: {why}"),
    )
}

impl Sketch {
    /// The sketch of `keys`, each hashed by its collation encoding, so
    /// keys CouchDB considers equal count once.
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a Value>) -> Sketch {
        let mut s = Sketch::default();
        for k in keys {
            s.0.insert(&key_hash(&collate::encode_key(k)));
        }
        s
    }

    /// Adds the keys of `other`.
    pub fn merge(&mut self, other: &Sketch) -> CouchResult<()> {
        self.0
            .merge(&other.0)
            .map_err(|e| bad_sketch(format!("{e:?}")))
    }

    /// The estimated number of distinct keys.
    pub fn count(&mut self) -> u64 {
        self.0.count().round() as u64
    }

    /// The sketch as stored: a JSON string of its MessagePack, base64.
    pub fn to_json(&mut self) -> Value {
        // Counting folds pending hashes into the sparse list first, which
        // is smaller and the same whatever order they came in.
        self.0.count();
        let bytes = rmp_serde::to_vec(&self.0).expect("a sketch serializes");
        Value::String(STANDARD_NO_PAD.encode(bytes))
    }

    /// A stored sketch (checked: merging refuses another precision).
    pub fn from_json(v: &Value) -> CouchResult<Sketch> {
        let mut s = Sketch::default();
        s.merge_json(v)?;
        Ok(s)
    }

    /// Adds the keys of a stored sketch, read straight into this one.
    pub fn merge_json(&mut self, v: &Value) -> CouchResult<()> {
        let text = v.as_str().ok_or_else(|| bad_sketch("not a string"))?;
        let bytes = STANDARD_NO_PAD.decode(text).map_err(bad_sketch)?;
        let hll: HyperLogLogPlus<u64, Prehashed> =
            rmp_serde::from_slice(&bytes).map_err(bad_sketch)?;
        self.merge(&Sketch(hll))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xorshift::Rng;
    use serde_json::json;

    #[test]
    fn the_key_hash_is_fixed() {
        // Stored sketches depend on these values.
        assert_eq!(key_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(key_hash(b"a"), 0x82a2_a958_a9be_ce5b);
    }

    /// Sketches of random splits of random keys, merged in random trees
    /// through their stored text, count exactly what one sketch of every
    /// key counts: from a few keys to thousands, across the change from
    /// the sparse representation to registers.
    #[test]
    fn merged_sketches_count_what_one_sketch_counts() {
        let mut rng = Rng(0x0005_EED5_CAFE_F00D);
        for distinct in [
            1, 3, 17, 100, 400, 700, 900, 1_200, 1_800, 3_000, 6_000, 9_000,
        ] {
            for _ in 0..3 {
                let keys: Vec<Value> = (0..distinct + distinct / 2)
                    .map(|_| match rng.below(3) {
                        0 => json!(rng.below(distinct)),
                        1 => json!(format!("k{}", rng.below(distinct))),
                        _ => json!([rng.below(7), rng.below(distinct)]),
                    })
                    .collect();
                let want = Sketch::of(&keys).count();
                let truth = keys
                    .iter()
                    .map(collate::encode_key)
                    .collect::<std::collections::HashSet<_>>()
                    .len() as f64;
                assert!(
                    (want as f64 - truth).abs() <= 1.0 + truth * 0.06,
                    "{want} of {truth}"
                );
                // Random pieces, stored, then merged a few at a time, level
                // by level.
                let mut parts: Vec<Value> = Vec::new();
                let mut rest = keys.as_slice();
                while !rest.is_empty() {
                    let n = (1 + rng.below(64) as usize).min(rest.len());
                    parts.push(Sketch::of(&rest[..n]).to_json());
                    rest = &rest[n..];
                }
                while parts.len() > 1 {
                    let mut next = Vec::new();
                    let mut at = 0;
                    while at < parts.len() {
                        let n = (1 + rng.below(16) as usize).min(parts.len() - at);
                        let mut s = Sketch::default();
                        for p in &parts[at..at + n] {
                            s.merge(&Sketch::from_json(p).unwrap()).unwrap();
                        }
                        next.push(s.to_json());
                        at += n;
                    }
                    parts = next;
                }
                let got = Sketch::from_json(&parts[0]).unwrap().count();
                assert_eq!(got, want, "{distinct} distinct keys");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_sketch() {
        for bad in [json!(3), json!("not base64!"), json!("AAAA")] {
            assert!(Sketch::from_json(&bad).is_err(), "{bad}");
        }
    }
}
