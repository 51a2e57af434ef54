//! CouchDB view collation: the order of JSON keys in views and Mango indexes.
//!
//! [`compare`] is CouchDB's default collation (`couch_ejson_compare`):
//!
//! * by type first: `null < false < true < numbers < strings < arrays < objects`;
//! * numbers by value (`1 == 1.0`);
//! * strings by the Unicode Collation Algorithm with ICU's root collation at
//!   the default (tertiary) strength, as CouchDB's ICU driver does: `"a" <
//!   "A" < "aa" < "b"`, punctuation and symbols before digits before letters.
//!   Strings the collator finds equal (e.g. precomposed `"é"` and decomposed
//!   `"e\u{301}"`) compare equal, as in CouchDB;
//! * arrays element by element, a prefix before the longer array;
//! * objects as the ordered list of their members, key (by the same string
//!   collation) then value, member by member, a prefix before the longer
//!   object. Member order matters: `{"b":2,"a":1}` sorts after `{"b":2}` and
//!   before `{"b":2,"c":2}`.
//!
//! [`compare_raw`] is the `"options": {"collation": "raw"}` view collation:
//! Erlang's term order on CouchDB's JSON terms, so the types order
//! differently (`numbers < false < null < true < objects < arrays <
//! strings`) and strings compare by bytes (= code points).
//!
//! [`encode_key`] / [`encode_key_raw`] map a value to bytes whose
//! lexicographic (memcmp, SQLite `BLOB`) order is exactly the collation, so
//! an index can range-scan on them. The encodings are one-way (ICU sort keys
//! cannot be decoded): keep the JSON beside them.
//!
//! Sort keys depend on the Unicode/CLDR data compiled into `icu_collator`;
//! an upgrade of that crate may change them, so indexes storing
//! [`encode_key`] output must be rebuilt when it changes.

use icu_collator::options::CollatorOptions;
use icu_collator::CollatorBorrowed;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// The collator's version as view `_info` reports it (CouchDB gives ICU's
/// `ucol_getVersion`; this names the icu4x release whose data sorts keys).
pub const COLLATOR_VERSION: &str = "icu4x-2.4";

/// The ICU root collator, default options (tertiary strength,
/// non-ignorable punctuation): what CouchDB opens with `ucol_open("")`.
/// Built at compile time from the root data alone, so no locale tailoring
/// data is linked.
static COLLATOR: CollatorBorrowed<'static> = CollatorBorrowed::new_root(CollatorOptions::default());

// Type tags of the encodings. Every encoded value is self-delimiting, and
// `END` (closing an array or object) sorts before every tag, so a prefix
// sorts before a longer array or object.
const END: u8 = 0x01;

const TAG_NULL: u8 = 0x02;
const TAG_FALSE: u8 = 0x03;
const TAG_TRUE: u8 = 0x04;
const TAG_NUMBER: u8 = 0x05;
const TAG_STRING: u8 = 0x06;
const TAG_ARRAY: u8 = 0x07;
const TAG_OBJECT: u8 = 0x08;

// Raw collation: Erlang term order, number < atom < tuple < list < binary,
// atoms alphabetically (false < null < true).
const RAW_NUMBER: u8 = 0x02;
const RAW_FALSE: u8 = 0x03;
const RAW_NULL: u8 = 0x04;
const RAW_TRUE: u8 = 0x05;
const RAW_OBJECT: u8 = 0x06;
const RAW_ARRAY: u8 = 0x07;
const RAW_STRING: u8 = 0x08;

/// Compares two JSON values in CouchDB's default view collation.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => compare_strings(x, y),
        (Value::Array(x), Value::Array(y)) => compare_seq(x, y, compare),
        (Value::Object(x), Value::Object(y)) => compare_members(x, y, compare_strings, compare),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compares two JSON values in the `raw` collation (Erlang term order).
pub fn compare_raw(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => compare_seq(x, y, compare_raw),
        (Value::Object(x), Value::Object(y)) => {
            compare_members(x, y, |p, q| p.as_bytes().cmp(q.as_bytes()), compare_raw)
        }
        _ => rank_raw(a).cmp(&rank_raw(b)),
    }
}

/// Compares two strings with the ICU root collation (tertiary strength).
pub fn compare_strings(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    COLLATOR.compare(a, b)
}

/// An order-preserving encoding of `v` in the default collation:
/// `encode_key(a).cmp(&encode_key(b)) == compare(a, b)` for all values.
pub fn encode_key(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

/// An order-preserving encoding of `v` in the raw collation:
/// `encode_key_raw(a).cmp(&encode_key_raw(b)) == compare_raw(a, b)`.
pub fn encode_key_raw(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_raw_into(v, &mut out);
    out
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

fn rank_raw(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::Bool(false) => 1,
        Value::Null => 2,
        Value::Bool(true) => 3,
        Value::Object(_) => 4,
        Value::Array(_) => 5,
        Value::String(_) => 6,
    }
}

fn compare_seq(a: &[Value], b: &[Value], cmp: fn(&Value, &Value) -> Ordering) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match cmp(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

fn compare_members(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    keys: impl Fn(&str, &str) -> Ordering,
    values: fn(&Value, &Value) -> Ordering,
) -> Ordering {
    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
        match keys(ka, kb).then_with(|| values(va, vb)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// A total-order key for a JSON number: its nearest `f64`, then, for an
/// integer too large for an `f64` to hold exactly, the (small) difference
/// between the integer and that `f64`. Integers and floats of equal value
/// get equal keys, so `1 == 1.0`, and large integers keep their exact order.
fn number_key(n: &Number) -> (f64, i16) {
    let int = n
        .as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from));
    match int {
        Some(i) => {
            let f = i as f64;
            // |i - f| is at most half an ulp of f: below 2^11 for 64-bit
            // integers, so it fits an i16. `f` is integral here.
            ((f + 0.0), (i - f as i128) as i16)
        }
        // `+ 0.0` turns -0.0 into 0.0; JSON has no NaN or infinities.
        None => (n.as_f64().unwrap_or(0.0) + 0.0, 0),
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    let (fa, da) = number_key(a);
    let (fb, db) = number_key(b);
    fa.total_cmp(&fb).then(da.cmp(&db))
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    let (f, d) = number_key(n);
    let bits = f.to_bits();
    // Flip negatives entirely and set the sign bit of positives: unsigned
    // order of the result is the numeric order of the floats.
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    out.extend_from_slice(&ordered.to_be_bytes());
    out.extend_from_slice(&((i32::from(d) + 0x8000) as u16).to_be_bytes());
}

/// Appends `bytes` escaped (0x00 -> 0x00 0xFF) and terminated (0x00 0x00):
/// the terminator sorts before any continuation, so a string whose bytes
/// are a prefix of another's sorts first, whatever follows the terminator.
pub(crate) fn push_terminated(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

fn encode_string(s: &str, out: &mut Vec<u8>) {
    out.push(TAG_STRING);
    let mut key = Vec::with_capacity(s.len() * 2 + 8);
    let Ok(()) = COLLATOR.write_sort_key_to(s, &mut key);
    push_terminated(&key, out);
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(n) => {
            out.push(TAG_NUMBER);
            encode_number(n, out);
        }
        Value::String(s) => encode_string(s, out),
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            for item in items {
                encode_into(item, out);
            }
            out.push(END);
        }
        Value::Object(members) => {
            out.push(TAG_OBJECT);
            for (k, v) in members {
                encode_string(k, out);
                encode_into(v, out);
            }
            out.push(END);
        }
    }
}

/// The length of the part of an encoded array key that holds its first `n`
/// items (the array tag and those items), when it has at least `n`: the
/// bytes every key of its `group_level=n` group starts with. `None` for a
/// key that is not an array or is shorter, whose group is the key alone.
/// `raw`: the key is [`encode_key_raw`]'s.
pub fn array_prefix(enc: &[u8], n: usize, raw: bool) -> Option<usize> {
    let array = if raw { RAW_ARRAY } else { TAG_ARRAY };
    if enc.first() != Some(&array) {
        return None;
    }
    let mut at = 1;
    for _ in 0..n {
        if enc.get(at) == Some(&END) {
            return None;
        }
        at = skip_value(enc, at, raw)?;
    }
    Some(at)
}

/// Where the encoded value starting at `at` ends.
fn skip_value(enc: &[u8], at: usize, raw: bool) -> Option<usize> {
    let tag = *enc.get(at)?;
    let (number, string, array, object) = if raw {
        (RAW_NUMBER, RAW_STRING, RAW_ARRAY, RAW_OBJECT)
    } else {
        (TAG_NUMBER, TAG_STRING, TAG_ARRAY, TAG_OBJECT)
    };
    match tag {
        t if t == number => Some(at + 1 + 10),
        t if t == string => {
            // Escaped bytes up to the `00 00` terminator (`00 FF` is an
            // escaped zero byte).
            let mut i = at + 1;
            loop {
                match (enc.get(i)?, enc.get(i + 1)) {
                    (0, Some(0)) => return Some(i + 2),
                    (0, _) => i += 2,
                    _ => i += 1,
                }
            }
        }
        t if t == array || t == object => {
            let mut i = at + 1;
            while *enc.get(i)? != END {
                i = skip_value(enc, i, raw)?;
            }
            Some(i + 1)
        }
        _ => Some(at + 1),
    }
}

fn encode_raw_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(RAW_NULL),
        Value::Bool(false) => out.push(RAW_FALSE),
        Value::Bool(true) => out.push(RAW_TRUE),
        Value::Number(n) => {
            out.push(RAW_NUMBER);
            encode_number(n, out);
        }
        Value::String(s) => {
            out.push(RAW_STRING);
            push_terminated(s.as_bytes(), out);
        }
        Value::Array(items) => {
            out.push(RAW_ARRAY);
            for item in items {
                encode_raw_into(item, out);
            }
            out.push(END);
        }
        Value::Object(members) => {
            out.push(RAW_OBJECT);
            for (k, v) in members {
                out.push(RAW_STRING);
                push_terminated(k.as_bytes(), out);
                encode_raw_into(v, out);
            }
            out.push(END);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_prefixes_are_the_encodings_of_the_leading_items() {
        let keys = [
            json!([1, "a\u{0}b", [2, {"x": [null, true]}], "z"]),
            json!(["é", {"k": "v", "l": [1, 2]}, false, 3.5]),
            json!([[], {}, "", -1e300]),
        ];
        for raw in [false, true] {
            let enc = |v: &Value| {
                if raw {
                    encode_key_raw(v)
                } else {
                    encode_key(v)
                }
            };
            for key in &keys {
                let items = key.as_array().unwrap();
                for n in 0..=items.len() {
                    let lead = enc(&Value::Array(items[..n].to_vec()));
                    let at = array_prefix(&enc(key), n, raw).unwrap();
                    // The leading items' own encoding, without its END.
                    assert_eq!(&enc(key)[..at], &lead[..lead.len() - 1], "{key} {n} {raw}");
                }
                assert_eq!(array_prefix(&enc(key), items.len() + 1, raw), None);
            }
            assert_eq!(array_prefix(&enc(&json!("s")), 1, raw), None);
            assert_eq!(array_prefix(&enc(&json!({"a": 1})), 1, raw), None);
        }
    }

    /// Asserts that `values` is strictly increasing under `cmp` and `enc`,
    /// pair by pair and for every pair (so transitivity is checked too).
    fn assert_strictly_sorted(
        values: &[Value],
        cmp: fn(&Value, &Value) -> Ordering,
        enc: fn(&Value) -> Vec<u8>,
    ) {
        let keys: Vec<Vec<u8>> = values.iter().map(enc).collect();
        for i in 0..values.len() {
            for j in 0..values.len() {
                let want = i.cmp(&j);
                assert_eq!(
                    cmp(&values[i], &values[j]),
                    want,
                    "compare({}, {})",
                    values[i],
                    values[j]
                );
                assert_eq!(
                    keys[i].cmp(&keys[j]),
                    want,
                    "encoded order of {} and {}",
                    values[i],
                    values[j]
                );
            }
        }
    }

    fn strings(list: &[&str]) -> Vec<Value> {
        list.iter().map(|s| json!(s)).collect()
    }

    /// The "Collation Specification" list of the CouchDB docs (views
    /// collation page), in order.
    fn couchdb_docs_order() -> Vec<Value> {
        let text = r#"[
            null, false, true,
            1, 2, 3.0, 4,
            "a", "A", "aa", "b", "B", "ba", "bb",
            ["a"], ["b"], ["b","c"], ["b","c","a"], ["b","d"], ["b","d","e"],
            {"a":1}, {"a":2}, {"b":1}, {"b":2}, {"b":2,"a":1}, {"b":2,"c":2}
        ]"#;
        match serde_json::from_str(text).unwrap() {
            Value::Array(v) => v,
            _ => unreachable!(),
        }
    }

    #[test]
    fn couchdb_documented_order() {
        let ordered = couchdb_docs_order();
        assert_strictly_sorted(&ordered, compare, encode_key);

        // Sorting a scrambled copy restores the documented order.
        let mut scrambled = ordered.clone();
        scrambled.reverse();
        scrambled.swap(3, 17);
        scrambled.swap(0, 9);
        let mut by_compare = scrambled.clone();
        by_compare.sort_by(compare);
        assert_eq!(by_compare, ordered);
        let mut by_key = scrambled;
        by_key.sort_by_key(encode_key);
        assert_eq!(by_key, ordered);
    }

    #[test]
    fn couchdb_documented_raw_order() {
        // "Raw collation" section of the same page.
        let ordered = vec![
            json!(1),
            json!(false),
            json!(null),
            json!(true),
            json!({"a": "a"}),
            json!(["a"]),
            json!("a"),
        ];
        assert_strictly_sorted(&ordered, compare_raw, encode_key_raw);
    }

    #[test]
    fn ascii_sequence() {
        // The CouchDB docs list the order of the printable ASCII characters
        // under ICU. Modern CLDR root collation (what ICU ships today, and
        // what icu_collator implements) moves "`" and "^" from the front of
        // the symbols to between "%" and "+"; the rest is as documented.
        let seq = "_ - , ; : ! ? . ' \" ( ) [ ] { } @ * / \\ & # % ` ^ + < = > | ~ $ \
                   0 1 2 3 4 5 6 7 8 9 \
                   a A b B c C d D e E f F g G h H i I j J k K l L m M \
                   n N o O p P q Q r R s S t T u U v V w W x X y Y z Z";
        let mut chars: Vec<&str> = vec![" "];
        chars.extend(seq.split(' '));
        assert_eq!(chars.len(), 95, "every printable ASCII character once");
        assert_strictly_sorted(&strings(&chars), compare, encode_key);
    }

    #[test]
    fn key_range_example_from_docs() {
        // "abc < Abc < ABC < abc1 < AbcZZZZZ"
        let ordered = strings(&["abc", "Abc", "ABC", "abc1", "AbcZZZZZ"]);
        assert_strictly_sorted(&ordered, compare, encode_key);
        // ... so the docs' recommended prefix range works.
        let end = json!("abc\u{fff0}");
        for s in ["abc", "abcd", "ABC", "abc1", "abczzz", "abc\u{4e2d}"] {
            assert_eq!(compare(&json!(s), &end), Ordering::Less, "{s}");
            assert!(encode_key(&json!(s)) < encode_key(&end), "{s}");
        }
    }

    #[test]
    fn unicode_strings() {
        let cases: &[&[&str]] = &[
            // Empty string first; case is tertiary, accents secondary.
            &["", "a", "A", "á", "Á", "ab", "b"],
            // Accents compare left to right in the root collation.
            &["cote", "coté", "côte", "côté"],
            &["resume", "Resume", "résumé", "Résumé", "resumes"],
            // Letters of other scripts after Latin; Han by code point.
            &["z", "α", "Ω", "я", "א", "ا", "あ", "ア", "一", "中", "日"],
            // Digits before letters, symbols before digits.
            &["-", "€", "1", "2", "a"],
            &["a", "ä", "b", "o", "ö", "p", "z"],
        ];
        for list in cases {
            assert_strictly_sorted(&strings(list), compare, encode_key);
        }
    }

    #[test]
    fn equivalent_strings_are_equal() {
        // Canonically equivalent strings collate equal, with equal keys.
        // Digits of other scripts differ from ASCII ones only beyond the
        // tertiary level in the root collation.
        let pairs = [
            ("\u{e9}", "e\u{301}"),
            ("\u{212b}", "\u{c5}"),
            ("1", "\u{661}"),
            ("x", "x"),
        ];
        for (a, b) in pairs {
            let (a, b) = (json!(a), json!(b));
            assert_eq!(compare(&a, &b), Ordering::Equal);
            assert_eq!(encode_key(&a), encode_key(&b));
            assert_eq!(
                compare(&json!([a.clone(), 1]), &json!([b.clone(), 1])),
                Ordering::Equal
            );
        }
        // ... but raw collation tells them apart.
        assert_ne!(
            compare_raw(&json!("\u{e9}"), &json!("e\u{301}")),
            Ordering::Equal
        );
    }

    #[test]
    fn numbers() {
        let text = r#"[
            -1e300, -9223372036854775808, -9007199254740993, -9007199254740992,
            -5, -1.5, -1, -0.5, 0, 1e-10, 0.5, 1, 1.5, 2, 10, 1e3, 1000.5,
            9007199254740991, 9007199254740992, 9007199254740993,
            9223372036854775807, 9223372036854775808, 18446744073709551615,
            1e20, 1.7976931348623157e308
        ]"#;
        let ordered: Vec<Value> = match serde_json::from_str(text).unwrap() {
            Value::Array(v) => v,
            _ => unreachable!(),
        };
        assert_strictly_sorted(&ordered, compare, encode_key);
        assert_strictly_sorted(&ordered, compare_raw, encode_key_raw);

        // Integer and float spellings of one value are equal.
        let equal: &[(&str, &str)] = &[
            ("1", "1.0"),
            ("0", "-0.0"),
            ("0", "0.0"),
            ("-0", "0"),
            ("100", "1e2"),
            ("-3", "-3.0"),
            ("9007199254740992", "9007199254740992.0"),
        ];
        for (a, b) in equal {
            let a: Value = serde_json::from_str(a).unwrap();
            let b: Value = serde_json::from_str(b).unwrap();
            assert_eq!(compare(&a, &b), Ordering::Equal, "{a} vs {b}");
            assert_eq!(compare_raw(&a, &b), Ordering::Equal, "{a} vs {b}");
            assert_eq!(encode_key(&a), encode_key(&b), "{a} vs {b}");
        }
        // 2^53 + 1 has no f64; it still sorts above the float 2^53.
        let big: Value = serde_json::from_str("9007199254740993").unwrap();
        let float: Value = serde_json::from_str("9007199254740992.0").unwrap();
        assert_eq!(compare(&big, &float), Ordering::Greater);
        assert!(encode_key(&big) > encode_key(&float));
    }

    #[test]
    fn nested_arrays_and_objects() {
        let ordered = vec![
            json!([]),
            json!([null]),
            json!([null, null]),
            json!([false]),
            json!([1]),
            json!([1, []]),
            json!([1, [1]]),
            json!([1, {}]),
            json!(["a", 1]),
            json!([[]]),
            json!([[1, 2], 3]),
            json!([[1, 2, 0]]),
            json!([[1, 3]]),
            json!([{}]),
            json!([{"a": null}]),
            json!({}),
            json!({"": 1}),
            json!({"a": null}),
            json!({"a": [1]}),
            json!({"a": [1], "b": 1}),
            json!({"a": [1, 2]}),
            json!({"a": {}}),
            json!({"A": 0}),
            json!({"aa": 0}),
            json!({"b": {"c": [1]}}),
            json!({"b": {"c": [1], "d": 1}}),
        ];
        assert_strictly_sorted(&ordered, compare, encode_key);

        // The "startkey=["foo"]&endkey=["foo",{}]" idiom from the docs.
        let (start, end) = (json!(["foo"]), json!(["foo", {}]));
        for inside in [
            json!(["foo"]),
            json!(["foo", "bar"]),
            json!(["foo", ["bar", "baz"]]),
            json!(["foo", 99]),
            json!(["foo", null, 1]),
        ] {
            assert_ne!(compare(&inside, &start), Ordering::Less, "{inside}");
            assert_eq!(compare(&inside, &end), Ordering::Less, "{inside}");
            assert!(encode_key(&inside) >= encode_key(&start));
            assert!(encode_key(&inside) < encode_key(&end));
        }
        // ... which misses object second elements, as the docs warn.
        let outside = json!(["foo", {"an": "object"}]);
        assert_eq!(compare(&outside, &end), Ordering::Greater);
        assert!(encode_key(&outside) > encode_key(&end));
    }

    #[test]
    fn member_order_matters() {
        let ab = json!({"a": 1, "b": 2});
        let ba: Value = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(compare(&ab, &ba), Ordering::Less);
        assert!(encode_key(&ab) < encode_key(&ba));
        assert_eq!(compare_raw(&ab, &ba), Ordering::Less);
    }

    #[test]
    fn raw_collation() {
        let ordered = vec![
            json!(-1),
            json!(2),
            json!(false),
            json!(null),
            json!(true),
            json!({}),
            json!({"A": 1}),
            json!({"a": 1}),
            json!({"a": 1, "b": 1}),
            json!({"b": 0}),
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!(["a"]),
            json!(""),
            json!("A"),
            json!("B"),
            json!("a"),
            json!("a\u{0}"),
            json!("a\u{0}b"),
            json!("ab"),
            json!("b"),
            json!("~"),
            json!("\u{e9}"),
            json!("\u{4e2d}"),
            json!("\u{1f600}"),
        ];
        assert_strictly_sorted(&ordered, compare_raw, encode_key_raw);
    }

    #[test]
    fn strings_nested_and_prefixes() {
        let ordered = vec![
            json!(""),
            json!("a"),
            json!("ab"),
            json!(["a"]),
            json!(["a", "a"]),
            json!(["a", "b"]),
            json!(["ab"]),
            json!({"a": "a"}),
            json!({"a": "a", "": null}),
            json!({"ab": null}),
        ];
        assert_strictly_sorted(&ordered, compare, encode_key);
        // U+0000 is ignorable in the UCA: "a\0" collates equal to "a" ...
        assert_eq!(compare(&json!("a\u{0}"), &json!("a")), Ordering::Equal);
        assert_eq!(encode_key(&json!("a\u{0}")), encode_key(&json!("a")));
        // ... but not in raw collation, where NUL bytes need the escaping.
        let raw = vec![
            json!(["a"]),
            json!(["a", "a"]),
            json!(["a\u{0}"]),
            json!(["a\u{0}", 1]),
            json!(["a\u{0}\u{0}"]),
            json!(["ab"]),
            json!(""),
            json!("\u{0}"),
            json!("a"),
            json!("a\u{0}"),
            json!("a\u{0}b"),
            json!("ab"),
        ];
        assert_strictly_sorted(&raw, compare_raw, encode_key_raw);
    }

    // --- Generated values: encoded order must equal compare order. ---

    use crate::xorshift::Rng;

    const PIECES: &[&str] = &[
        "a", "A", "b", "B", "z", "Z", "á", "Á", "e\u{301}", "é", "ä", "ß", "ss", "æ", "-", " ",
        "_", "~", "$", "!", "`", "^", "0", "1", "9", "\u{0}", "\u{1}", "\t", "中", "日", "あ", "α",
        "я", "\u{fff0}", "\u{ffff}", "😀", "ǅ", "ﬁ", "Ａ", "\u{300}",
    ];

    fn gen_string(rng: &mut Rng) -> String {
        let len = rng.below(5);
        (0..len).map(|_| *rng.pick(PIECES)).collect()
    }

    fn gen_number(rng: &mut Rng) -> Value {
        let text = match rng.below(8) {
            0 => format!("{}", rng.below(5) as i64 - 2),
            1 => format!("{}.{}", rng.below(5) as i64 - 2, rng.below(10)),
            2 => format!("{}", (rng.next_u64() as i64) >> rng.below(64)),
            3 => format!("{}", rng.next_u64()),
            4 => format!("{}", 9_007_199_254_740_990_i64 + rng.below(6) as i64),
            5 => format!("{}e{}", rng.below(9) + 1, rng.below(40) as i64 - 20),
            6 => format!("{}.0", rng.below(4)),
            _ => format!("-{}e{}", rng.below(9) + 1, rng.below(600) as i64 - 300),
        };
        serde_json::from_str(&text).unwrap()
    }

    fn gen_value(rng: &mut Rng, depth: usize) -> Value {
        let kinds = if depth == 0 { 5 } else { 7 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 1),
            2 => gen_number(rng),
            3 | 4 => Value::String(gen_string(rng)),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| gen_value(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.below(4) {
                    m.insert(gen_string(rng), gen_value(rng, depth - 1));
                }
                Value::Object(m)
            }
        }
    }

    fn check_generated(cmp: fn(&Value, &Value) -> Ordering, enc: fn(&Value) -> Vec<u8>) {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let values: Vec<Value> = (0..600).map(|_| gen_value(&mut rng, 3)).collect();
        let keys: Vec<Vec<u8>> = values.iter().map(enc).collect();
        for i in 0..values.len() {
            for j in 0..values.len() {
                let c = cmp(&values[i], &values[j]);
                assert_eq!(keys[i].cmp(&keys[j]), c, "{} vs {}", values[i], values[j]);
                assert_eq!(cmp(&values[j], &values[i]), c.reverse());
            }
        }
        // Transitivity: sorting by the key gives a list sorted by compare.
        let mut sorted = values.clone();
        sorted.sort_by_key(enc);
        for w in sorted.windows(2) {
            assert_ne!(cmp(&w[0], &w[1]), Ordering::Greater, "{} {}", w[0], w[1]);
        }
    }

    #[test]
    fn generated_values_encode_in_collation_order() {
        check_generated(compare, encode_key);
    }

    #[test]
    fn generated_values_encode_in_raw_order() {
        check_generated(compare_raw, encode_key_raw);
    }

    #[test]
    fn generated_strings_sort_keys_agree_with_collator() {
        let mut rng = Rng(42);
        let words: Vec<String> = (0..1500).map(|_| gen_string(&mut rng)).collect();
        for pair in words.chunks(2) {
            let (a, b) = (json!(pair[0]), json!(pair[1]));
            assert_eq!(
                encode_key(&a).cmp(&encode_key(&b)),
                compare(&a, &b),
                "{a} vs {b}"
            );
        }
    }
}
