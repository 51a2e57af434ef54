//! Property tests over the parsers that read what clients send: whatever
//! the bytes, each answers a value or a CouchDB error, never a panic; and
//! the collation encoding orders keys exactly as the collation compares
//! them. Part of `make test` (and of `make torture`, with more cases).

use proptest::prelude::*;
use serde_json::{json, Value};
use shared::collate;
use shared::doc::IncomingDoc;
use shared::jwt::{self, JwtConfig};
use shared::rev::Rev;
use shared::selector::Selector;
use shared::{multipart, seq, session};
use std::cmp::Ordering;

fn cases() -> u32 {
    std::env::var("TORTURE_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512)
}

/// JSON values up to a small depth, with the strings and numbers that trip
/// parsers: empty, unicode, underscores, huge and negative numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "_id", "_rev", "$gt", "$and", "_deleted", "", "\u{0}", "é"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z_$]{0,6}",
                        prop::sample::select(vec![
                            "_id",
                            "_rev",
                            "_deleted",
                            "_revisions",
                            "_attachments",
                            "$and",
                            "$or",
                            "$not",
                            "$nor",
                            "$gt",
                            "$lt",
                            "$in",
                            "$regex",
                            "$elemMatch",
                            "$allMatch",
                            "$exists",
                            "$type",
                            "$size",
                            "$mod",
                            "$all",
                            "$keyMapMatch",
                            "$beginsWith",
                            "start",
                            "ids",
                            "data",
                            "stub",
                            "follows",
                        ])
                        .prop_map(String::from),
                    ],
                    inner,
                ),
                0..6,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn documents_from_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = IncomingDoc::parse(v);
        }
    }

    #[test]
    fn documents_from_any_json(v in json_value()) {
        if let Ok(doc) = IncomingDoc::parse(v) {
            let _ = doc.body_json();
            if let Some(a) = &doc.attachments {
                let _ = shared::attachments::parse(a);
            }
        }
    }

    #[test]
    fn revs_and_sequences(s in "\\PC{0,24}|[0-9]{0,22}-[0-9a-f]{0,34}") {
        let strict = s.parse::<Rev>();
        let lookup = Rev::lookup(&s);
        if let Ok(r) = &strict {
            prop_assert_eq!(r.to_string(), s.clone());
            prop_assert!(lookup.is_ok(), "what parses strictly parses for lookups");
        }
        let _ = seq::parse_since(&s);
        let _ = seq::since_from_json(&json!(s));
    }

    #[test]
    fn multipart_bodies(
        body in prop::collection::vec(any::<u8>(), 0..300),
        boundary in "[a-z0-9]{1,12}",
        framed in any::<bool>(),
    ) {
        let body = if framed {
            let mut b = format!("--{boundary}\r\ncontent-type: application/json\r\n\r\n").into_bytes();
            b.extend(&body);
            b.extend(format!("\r\n--{boundary}--").into_bytes());
            b
        } else {
            body
        };
        let _ = multipart::parse(&body, &boundary);
        let ct = format!("multipart/related; boundary=\"{boundary}\"");
        let _ = multipart::related_document(&body, &ct);
        let _ = multipart::boundary(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn session_cookies(value in "\\PC{0,80}|[A-Za-z0-9_=-]{0,80}") {
        if let Some(p) = session::parse(&value) {
            let _ = p.verify("salt", "secret", 1_000, 600);
        }
        let _ = session::from_cookie_header(&format!("a=b; AuthSession={value}; c"));
    }

    #[test]
    fn jwt_tokens(parts in prop::collection::vec("[A-Za-z0-9_=-]{0,40}", 0..5), claims in json_value()) {
        let cfg = JwtConfig {
            keys: serde_json::from_value(json!({"hmac:_default": "c2VjcmV0"})).unwrap(),
            roles_claim_path: "roles".into(),
            required_claims: vec!["exp".into()],
        };
        let _ = jwt::authenticate(&parts.join("."), &cfg, 1_000);
        let signed = jwt::sign_hs256(&claims, b"secret", None);
        let _ = jwt::authenticate(&signed, &cfg, 1_000);
    }

    #[test]
    fn mango_selectors(selector in json_value(), doc in json_value()) {
        if let Ok(s) = Selector::parse(&selector) {
            let _ = s.matches(&doc);
            let _ = s.fields();
            let _ = s.field_ranges();
            let again = Selector::parse(&s.to_json());
            prop_assert!(again.is_ok(), "a normalised selector parses again: {}", s.to_json());
        }
        let _ = shared::mango::parse_sort(&selector);
    }

    #[test]
    fn collation_keys_sort_as_collation_compares(a in json_value(), b in json_value()) {
        let by_keys = collate::encode_key(&a).cmp(&collate::encode_key(&b));
        let by_compare = collate::compare(&a, &b);
        // Equal under collation may still differ in bytes (1 and 1.0).
        if by_compare != Ordering::Equal {
            prop_assert_eq!(by_keys, by_compare, "{} vs {}", a, b);
        }
        let raw = collate::encode_key_raw(&a).cmp(&collate::encode_key_raw(&b));
        if collate::compare_raw(&a, &b) != Ordering::Equal {
            prop_assert_eq!(raw, collate::compare_raw(&a, &b));
        }
    }
}
