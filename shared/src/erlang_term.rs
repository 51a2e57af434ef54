//! Erlang's external term format, as much of it as CouchDB's revision ids
//! need.
//!
//! CouchDB names a new revision by the MD5 of
//! `term_to_binary([Deleted, OldStart, OldRev, Body, Atts], [{minor_version, 1}])`
//! (`couch_db:new_revid/1`), where `Body` is the document's members as jiffy
//! decodes them (`{[{Key, Value}, ...]}`, strings as binaries, numbers with a
//! fraction or exponent as floats). Producing the same bytes makes Settee's
//! revision ids CouchDB's: the same edit made on either server gets the same
//! id, which clients and test suites rely on.
//!
//! The encoding follows `term_to_binary` exactly where it has choices: atoms
//! as `ATOM_EXT` (minor version 1, Latin-1 names), integers in the smallest
//! of the three integer forms, floats as `NEW_FLOAT_EXT`, and a list of
//! integers 0..=255 as `STRING_EXT`.

use serde_json::{Map, Value};

const VERSION: u8 = 131;
const NEW_FLOAT: u8 = 70;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const ATOM: u8 = 100;
const SMALL_TUPLE: u8 = 104;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;

/// One Erlang term, borrowed from the JSON and bytes it stands for.
pub enum Term<'a> {
    Atom(&'static str),
    Int(i128),
    Binary(&'a [u8]),
    List(Vec<Term<'a>>),
    Tuple(Vec<Term<'a>>),
    /// A JSON value as jiffy decodes it.
    Json(&'a Value),
    /// A JSON object's members as jiffy decodes them: `{[{K, V}, ...]}`.
    Object(&'a Map<String, Value>),
}

/// `term_to_binary(Term, [{minor_version, 1}])`.
pub fn to_binary(term: &Term) -> Vec<u8> {
    let mut out = vec![VERSION];
    encode(term, &mut out);
    out
}

fn encode(term: &Term, out: &mut Vec<u8>) {
    match term {
        Term::Atom(name) => atom(name, out),
        Term::Int(n) => int(*n, out),
        Term::Binary(b) => binary(b, out),
        Term::List(items) => list(items.len(), items.iter(), out, encode),
        Term::Tuple(items) => {
            out.extend([SMALL_TUPLE, items.len() as u8]);
            items.iter().for_each(|t| encode(t, out));
        }
        Term::Json(v) => json(v, out),
        Term::Object(m) => object(m, out),
    }
}

fn atom(name: &str, out: &mut Vec<u8>) {
    out.push(ATOM);
    out.extend((name.len() as u16).to_be_bytes());
    out.extend(name.as_bytes());
}

fn int(n: i128, out: &mut Vec<u8>) {
    if (0..=255).contains(&n) {
        out.extend([SMALL_INTEGER, n as u8]);
    } else if let Ok(n) = i32::try_from(n) {
        out.push(INTEGER);
        out.extend(n.to_be_bytes());
    } else {
        let digits: Vec<u8> = n.unsigned_abs().to_le_bytes().into_iter().collect();
        let len = digits.iter().rposition(|&d| d != 0).map_or(0, |i| i + 1);
        out.extend([SMALL_BIG, len as u8, (n < 0) as u8]);
        out.extend(&digits[..len]);
    }
}

fn binary(b: &[u8], out: &mut Vec<u8>) {
    out.push(BINARY);
    out.extend((b.len() as u32).to_be_bytes());
    out.extend(b);
}

/// A proper list: `NIL_EXT` when empty, else `LIST_EXT`, the items and a
/// `NIL_EXT` tail.
fn list<T>(
    len: usize,
    items: impl Iterator<Item = T>,
    out: &mut Vec<u8>,
    each: impl Fn(T, &mut Vec<u8>),
) {
    if len > 0 {
        out.push(LIST);
        out.extend((len as u32).to_be_bytes());
        items.for_each(|t| each(t, out));
    }
    out.push(NIL);
}

fn object(m: &Map<String, Value>, out: &mut Vec<u8>) {
    out.extend([SMALL_TUPLE, 1]);
    list(m.len(), m.iter(), out, |(k, v), out| {
        out.extend([SMALL_TUPLE, 2]);
        binary(k.as_bytes(), out);
        json(v, out);
    });
}

fn json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => atom("null", out),
        Value::Bool(b) => atom(if *b { "true" } else { "false" }, out),
        // Integers keep their digits (an Erlang bignum past 64 bits).
        Value::Number(n) => match n.to_string().parse::<i128>() {
            Ok(i) => int(i, out),
            Err(_) => {
                out.push(NEW_FLOAT);
                out.extend(n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        },
        Value::String(s) => binary(s.as_bytes(), out),
        Value::Array(items) => {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|i| i.as_u64().filter(|&u| u <= 255).map(|u| u as u8))
                .collect();
            match bytes {
                Some(b) if !b.is_empty() && b.len() <= u16::MAX as usize => {
                    out.push(STRING);
                    out.extend((b.len() as u16).to_be_bytes());
                    out.extend(b);
                }
                _ => list(items.len(), items.iter(), out, json),
            }
        }
        Value::Object(m) => object(m, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> Vec<u8> {
        to_binary(&Term::Json(&v))
    }

    #[test]
    fn scalars_as_term_to_binary_writes_them() {
        assert_eq!(enc(json!(7)), [131, 97, 7]);
        assert_eq!(enc(json!(-1)), [131, 98, 255, 255, 255, 255]);
        assert_eq!(enc(json!(256)), [131, 98, 0, 0, 1, 0]);
        assert_eq!(enc(json!(4294967296u64)), [131, 110, 5, 0, 0, 0, 0, 0, 1]);
        assert_eq!(enc(json!(-2147483649i64)), [131, 110, 4, 1, 1, 0, 0, 128]);
        assert_eq!(enc(json!(1.5)), [131, 70, 63, 248, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(json!(true)), [131, 100, 0, 4, b't', b'r', b'u', b'e']);
        assert_eq!(enc(json!("é")), [131, 109, 0, 0, 0, 2, 0xc3, 0xa9]);
    }

    #[test]
    fn lists_of_bytes_are_strings_and_objects_are_proplists() {
        assert_eq!(enc(json!([])), [131, 106]);
        assert_eq!(enc(json!([1, 2])), [131, 107, 0, 2, 1, 2]);
        assert_eq!(
            enc(json!([1, 300])),
            [131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106]
        );
        assert_eq!(enc(json!({})), [131, 104, 1, 106]);
        assert_eq!(
            enc(json!({"a": null})),
            [
                131, 104, 1, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, b'a', 100, 0, 4, b'n', b'u',
                b'l', b'l', 106
            ]
        );
    }
}
