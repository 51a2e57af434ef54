//! From a parsed [`Query`] to what SQLite can run: FTS5 `MATCH`
//! expressions over terms encoded per field, and ranges, which FTS5 cannot
//! express, for a table of field values beside it.
//!
//! A search index stores each (field, term) pair as one FTS5 token,
//! [`token`]: the field's and the term's UTF-8 in hex around a `z`. Such
//! a token is letters and digits only, so FTS5's `unicode61` tokenizer
//! keeps it whole and a field's terms never meet another field's; a hex
//! prefix of a term is the prefix of its hex, so `foo*` is an FTS5 prefix
//! query. Terms come from the field's analyzer, on both sides.
//!
//! Clauses combine as Lucene's `BooleanQuery` does: with required clauses
//! a document must match all of them (the optional ones only rank it);
//! without, one of the optional ones; and none of the prohibited ones. A
//! query of prohibited clauses alone matches nothing, as in Lucene
//! (`*:* -foo` is the way to ask for everything else). Boosts only rank.

use super::analyzer::Analyzer;
use super::query::{Occur, Query};
use crate::error::{CouchError, CouchResult};

/// The field a query term without one searches, as Clouseau names it.
pub const DEFAULT_FIELD: &str = "default";

/// What a query asks of the index.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Documents an FTS5 `MATCH` expression matches.
    Match(String),
    /// Documents with a value of `field` in the range: numbers when
    /// `numeric`, else terms in their byte order (Lucene's term order).
    Range {
        field: String,
        lower: Option<Bound>,
        upper: Option<Bound>,
        numeric: bool,
    },
    All,
    Nothing,
    And(Vec<Plan>),
    Or(Vec<Plan>),
    /// Documents of the first plan that the second does not match.
    AndNot(Box<Plan>, Box<Plan>),
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: String,
    pub inclusive: bool,
}

/// The FTS5 token of `term` in `field`.
pub fn token(field: &str, term: &str) -> String {
    let mut out = String::with_capacity(2 * (field.len() + term.len()) + 1);
    hex(field, &mut out);
    out.push('z');
    hex(term, &mut out);
    out
}

fn hex(s: &str, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in s.bytes() {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

fn refused(what: &str) -> CouchError {
    CouchError::new(
        400,
        "query_parse_error",
        format!("{what} are not supported (Settee's search runs on SQLite FTS5)"),
    )
}

/// The plan of `q`, with each field's terms from `analyzer`.
pub fn plan(q: &Query, analyzer: &Analyzer) -> CouchResult<Plan> {
    Ok(clause(q, analyzer)?.unwrap_or(Plan::Nothing))
}

/// The plan of one clause; `None` when its text analyzed to no terms,
/// which drops the clause, required or not, as Lucene's parser drops it.
fn clause(q: &Query, analyzer: &Analyzer) -> CouchResult<Option<Plan>> {
    let field = |f: &Option<String>| f.clone().unwrap_or_else(|| DEFAULT_FIELD.to_string());
    Ok(Some(match q {
        Query::All => Plan::All,
        Query::Boost(q, _) => return clause(q, analyzer),
        Query::Term { field: f, text } => {
            let f = field(f);
            // Clouseau's parser reads a number as a numeric range of one
            // value, which only numeric fields match.
            if text.parse::<f64>().is_ok_and(f64::is_finite) {
                let b = Bound {
                    value: text.clone(),
                    inclusive: true,
                };
                return Ok(Some(Plan::Range {
                    field: f,
                    lower: Some(b.clone()),
                    upper: Some(b),
                    numeric: true,
                }));
            }
            let tokens: Vec<String> = analyzed(analyzer, &f, text)
                .iter()
                .map(|t| quoted(t))
                .collect();
            match tokens.len() {
                0 => return Ok(None),
                1 => Plan::Match(tokens.concat()),
                _ => Plan::Match(format!("({})", tokens.join(" OR "))),
            }
        }
        Query::Prefix { field: f, prefix } => {
            // Lucene lower-cases expanded terms, and analyzes nothing.
            let f = field(f);
            Plan::Match(format!("{}*", quoted(&token(&f, &prefix.to_lowercase()))))
        }
        Query::Phrase {
            field: f,
            text,
            slop,
        } => {
            let f = field(f);
            let tokens = analyzed(analyzer, &f, text);
            match (tokens.len(), slop) {
                (0, _) => return Ok(None),
                (1, _) => Plan::Match(quoted(&tokens[0])),
                (_, 0) => Plan::Match(quoted(&tokens.join(" "))),
                // FTS5's NEAR ignores order, which Lucene's slop charges for.
                (n, s) => Plan::Match(format!(
                    "NEAR({}, {})",
                    tokens
                        .iter()
                        .map(|t| quoted(t))
                        .collect::<Vec<_>>()
                        .join(" "),
                    *s as usize + n - 1
                )),
            }
        }
        Query::Range {
            field: f,
            lower,
            upper,
            include_lower,
            include_upper,
        } => {
            // `Infinity` and `-Infinity` are numeric ends, as in Clouseau.
            let number = |b: &Option<String>| {
                b.as_deref()
                    .is_none_or(|v| v.parse::<f64>().is_ok_and(|n| !n.is_nan()))
            };
            let bound = |value: &Option<String>, inclusive: bool| {
                value.clone().map(|value| Bound { value, inclusive })
            };
            Plan::Range {
                field: field(f),
                lower: bound(lower, *include_lower),
                upper: bound(upper, *include_upper),
                numeric: number(lower) && number(upper) && (lower.is_some() || upper.is_some()),
            }
        }
        Query::Wildcard { .. } => return Err(refused("Wildcards other than one trailing `*`")),
        Query::Fuzzy { .. } => return Err(refused("Fuzzy queries (`term~`)")),
        Query::Bool(clauses) => {
            let mut must = Vec::new();
            let mut should = Vec::new();
            let mut not = Vec::new();
            for (occur, q) in clauses {
                let Some(p) = clause(q, analyzer)? else {
                    continue;
                };
                match occur {
                    Occur::Must => must.push(p),
                    Occur::Should => should.push(p),
                    Occur::MustNot => not.push(p),
                }
            }
            if must.is_empty() && should.is_empty() && not.is_empty() {
                return Ok(None);
            }
            let base = if !must.is_empty() {
                and(must)
            } else if !should.is_empty() {
                or(should)
            } else {
                Plan::Nothing
            };
            if not.is_empty() || base == Plan::Nothing {
                base
            } else {
                and_not(base, or(not))
            }
        }
    }))
}

/// The tokens of `text` in `field`, through the field's analyzer.
fn analyzed(analyzer: &Analyzer, field: &str, text: &str) -> Vec<String> {
    analyzer
        .for_field(field)
        .terms(text)
        .iter()
        .map(|t| token(field, t))
        .collect()
}

/// A token inside double quotes, FTS5's string form.
fn quoted(t: &str) -> String {
    format!("\"{t}\"")
}

/// Plans all of which must match; `MATCH` expressions merge into one.
fn and(plans: Vec<Plan>) -> Plan {
    if plans.contains(&Plan::Nothing) {
        return Plan::Nothing;
    }
    let plans: Vec<Plan> = plans.into_iter().filter(|p| *p != Plan::All).collect();
    combine(plans, "AND", Plan::And, Plan::All)
}

/// Plans one of which must match.
fn or(plans: Vec<Plan>) -> Plan {
    if plans.contains(&Plan::All) {
        return Plan::All;
    }
    let plans: Vec<Plan> = plans.into_iter().filter(|p| *p != Plan::Nothing).collect();
    combine(plans, "OR", Plan::Or, Plan::Nothing)
}

fn combine(plans: Vec<Plan>, op: &str, wrap: fn(Vec<Plan>) -> Plan, empty: Plan) -> Plan {
    let (matches, mut rest): (Vec<Plan>, Vec<Plan>) =
        plans.into_iter().partition(|p| matches!(p, Plan::Match(_)));
    let mut texts: Vec<String> = matches
        .into_iter()
        .map(|p| match p {
            Plan::Match(m) => m,
            _ => unreachable!("partitioned"),
        })
        .collect();
    match texts.len() {
        0 => {}
        1 => rest.insert(0, Plan::Match(texts.pop().expect("one"))),
        _ => {
            let joined: Vec<String> = texts.iter().map(|m| format!("({m})")).collect();
            rest.insert(0, Plan::Match(joined.join(&format!(" {op} "))));
        }
    }
    match rest.len() {
        0 => empty,
        1 => rest.pop().expect("one"),
        _ => wrap(rest),
    }
}

fn and_not(base: Plan, not: Plan) -> Plan {
    match (base, not) {
        (_, Plan::All) => Plan::Nothing,
        (b, Plan::Nothing) => b,
        (Plan::Match(a), Plan::Match(b)) => Plan::Match(format!("({a}) NOT ({b})")),
        (a, b) => Plan::AndNot(Box::new(a), Box::new(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::*;

    fn planned(q: &str) -> Plan {
        plan(&parse(q).unwrap(), &Analyzer::Standard).unwrap()
    }

    fn t(field: &str, term: &str) -> String {
        format!("\"{}\"", token(field, term))
    }

    #[test]
    fn tokens_are_letters_and_digits_per_field() {
        assert_eq!(token("a", "b"), "61z62");
        assert_eq!(token("title", "é"), "7469746c65zc3a9");
        assert!(token("f", "foo").starts_with(&token("f", "fo")));
        assert_ne!(token("ab", "c"), token("a", "bc"));
    }

    #[test]
    fn terms_phrases_and_prefixes_become_one_match() {
        assert_eq!(planned("Foo"), Plan::Match(t("default", "foo")));
        assert_eq!(
            planned("title:(Foo bar) -body:baz"),
            Plan::Match(format!(
                "(({}) OR ({})) NOT ({})",
                t("title", "foo"),
                t("title", "bar"),
                t("body", "baz")
            ))
        );
        assert_eq!(
            planned("x AND y"),
            Plan::Match(format!(
                "({}) AND ({})",
                t("default", "x"),
                t("default", "y")
            ))
        );
        assert_eq!(planned("the AND fox"), Plan::Match(t("default", "fox")));
        assert_eq!(
            planned("title:\"Quick Brown\""),
            Plan::Match(format!(
                "\"{} {}\"",
                token("title", "quick"),
                token("title", "brown")
            ))
        );
        assert_eq!(
            planned("\"quick brown\"~2"),
            Plan::Match(format!(
                "NEAR({} {}, 3)",
                t("default", "quick"),
                t("default", "brown")
            ))
        );
        assert_eq!(
            planned("Fo*"),
            Plan::Match(format!("{}*", t("default", "fo")))
        );
    }

    #[test]
    fn numbers_ranges_stop_words_and_negatives() {
        assert_eq!(
            planned("price:[1 TO *]"),
            Plan::Range {
                field: "price".into(),
                lower: Some(Bound {
                    value: "1".into(),
                    inclusive: true
                }),
                upper: None,
                numeric: true
            }
        );
        assert!(matches!(
            planned("name:{a TO m]"),
            Plan::Range { numeric: false, .. }
        ));
        assert!(matches!(planned("n:5"), Plan::Range { numeric: true, .. }));
        assert!(matches!(
            planned("n:{0 TO Infinity]"),
            Plan::Range { numeric: true, .. }
        ));
        assert_eq!(planned("the"), Plan::Nothing);
        assert_eq!(planned("the fox"), Plan::Match(t("default", "fox")));
        assert_eq!(planned("-fox"), Plan::Nothing);
        assert_eq!(
            planned("*:* -fox"),
            Plan::AndNot(
                Box::new(Plan::All),
                Box::new(Plan::Match(t("default", "fox")))
            )
        );
        assert_eq!(
            planned("fox AND price:[1 TO 2]"),
            Plan::And(vec![
                Plan::Match(t("default", "fox")),
                Plan::Range {
                    field: "price".into(),
                    lower: Some(Bound {
                        value: "1".into(),
                        inclusive: true
                    }),
                    upper: Some(Bound {
                        value: "2".into(),
                        inclusive: true
                    }),
                    numeric: true
                }
            ])
        );
        for bad in ["f?x", "fox~"] {
            let e = plan(&parse(bad).unwrap(), &Analyzer::Standard).unwrap_err();
            assert_eq!((e.status, e.error.as_str()), (400, "query_parse_error"));
        }
    }
}
