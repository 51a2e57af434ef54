//! Lucene's classic query syntax, as CouchDB's `_search` takes it in `q`
//! (Clouseau runs Lucene's `QueryParser`): terms, `field:` prefixes,
//! phrases with `~slop`, `(groups)`, `AND`/`OR`/`NOT`/`&&`/`||`/`!`, `+`
//! and `-`, `prefix*` and other wildcards, `term~` fuzziness, `[a TO b]`
//! and `{a TO b}` ranges (mixed brackets and `*` for an open end), `^boost`,
//! and `\` escapes.
//!
//! Parsing gives a [`Query`] tree with no analysis done: which analyzer a
//! field's text goes through, and whether a range is numeric, is decided
//! where the index is known. Clauses combine as the classic parser
//! combines them with `OR` as the default operator: `AND` makes the
//! clauses on both sides required, so `a AND b OR c` requires `a` and `b`
//! and only prefers `c`.

use crate::error::CouchError;

/// How a clause of a [`Query::Bool`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occur {
    /// A document must match it.
    Must,
    /// Matching it is preferred; when a query has no required clause, a
    /// document must match one of these.
    Should,
    /// A document must not match it.
    MustNot,
}

/// A parsed query. `field` is `None` for the default field.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Term {
        field: Option<String>,
        text: String,
    },
    /// `foo*`: terms starting with `prefix`.
    Prefix {
        field: Option<String>,
        prefix: String,
    },
    /// A term with `*` or `?` other than one trailing `*`.
    Wildcard {
        field: Option<String>,
        pattern: String,
    },
    /// `foo~` or `foo~1`: terms within `edits` edits.
    Fuzzy {
        field: Option<String>,
        text: String,
        edits: u32,
    },
    /// `"a b c"`, with `~slop` words allowed between them.
    Phrase {
        field: Option<String>,
        text: String,
        slop: u32,
    },
    /// `[lower TO upper]`; `None` is an open end (`*`).
    Range {
        field: Option<String>,
        lower: Option<String>,
        upper: Option<String>,
        include_lower: bool,
        include_upper: bool,
    },
    /// `*:*`.
    All,
    Bool(Vec<(Occur, Query)>),
    Boost(Box<Query>, f64),
}

/// A query that cannot be parsed: Lucene's message, with the column
/// (1-based) where parsing stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// The error CouchDB answers for it: 400 `query_parse_error`.
    pub fn to_couch(&self, q: &str) -> CouchError {
        CouchError::new(
            400,
            "query_parse_error",
            format!(
                "Cannot parse '{q}': {} at line 1, column {}.",
                self.message, self.column
            ),
        )
    }
}

/// Parses `q`.
pub fn parse(q: &str) -> Result<Query, ParseError> {
    let tokens = lex(q)?;
    let mut p = Parser {
        tokens,
        at: 0,
        end: q.chars().count() + 1,
    };
    let query = p.query(None)?;
    match p.peek() {
        None => Ok(query),
        Some(t) => Err(p.unexpected(t.clone())),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    And,
    Or,
    Not,
    Plus,
    Minus,
    Open,
    Close,
    Colon,
    Caret(String),
    Tilde(Option<String>),
    /// A bare term, unescaped; `wild` if it holds an unescaped `*` or `?`.
    Term {
        text: String,
        wild: bool,
    },
    Phrase(String),
    Range {
        lower: String,
        upper: String,
        include_lower: bool,
        include_upper: bool,
    },
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::And => "\"AND\"".into(),
            Tok::Or => "\"OR\"".into(),
            Tok::Not => "\"NOT\"".into(),
            Tok::Plus => "\"+\"".into(),
            Tok::Minus => "\"-\"".into(),
            Tok::Open => "\"(\"".into(),
            Tok::Close => "\")\"".into(),
            Tok::Colon => "\":\"".into(),
            Tok::Caret(_) => "\"^\"".into(),
            Tok::Tilde(_) => "\"~\"".into(),
            Tok::Term { text, .. } => format!("<TERM> \"{text}\""),
            Tok::Phrase(p) => format!("<QUOTED> \"\\\"{p}\\\"\""),
            Tok::Range { .. } => "<RANGE>".into(),
        }
    }
}

/// Characters that end a bare term (unless escaped).
fn special(c: char) -> bool {
    matches!(
        c,
        '+' | '-' | '!' | '(' | ')' | '{' | '}' | '[' | ']' | '^' | '"' | '~' | ':' | '\\' | '/'
    ) || c.is_whitespace()
}

/// The operator `chars` starts with, and its length in characters.
fn operator(chars: &[char]) -> Option<(usize, Tok)> {
    Some(match chars {
        ['&', '&', ..] => (2, Tok::And),
        ['|', '|', ..] => (2, Tok::Or),
        ['+', ..] => (1, Tok::Plus),
        ['-', ..] => (1, Tok::Minus),
        ['!', ..] => (1, Tok::Not),
        ['(', ..] => (1, Tok::Open),
        [')', ..] => (1, Tok::Close),
        [':', ..] => (1, Tok::Colon),
        _ => return None,
    })
}

/// Tokens with the (1-based) column each starts at.
fn lex(q: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: &str| ParseError {
        column,
        message: message.to_string(),
    };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some((len, tok)) = operator(&chars[i..]) {
            i += len;
            out.push((col, tok));
            continue;
        }
        let tok = match c {
            '^' | '~' => {
                i += 1;
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let n: String = chars[start..i].iter().collect();
                if c == '^' {
                    if n.is_empty() {
                        return Err(err(col, "Encountered \"^\""));
                    }
                    Tok::Caret(n)
                } else {
                    Tok::Tilde((!n.is_empty()).then_some(n))
                }
            }
            '"' => {
                i += 1;
                let mut text = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err(col, "Lexical error: unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') if i + 1 < chars.len() => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                Tok::Phrase(text)
            }
            '[' | '{' => {
                let include_lower = c == '[';
                i += 1;
                let mut words: Vec<String> = Vec::new();
                let mut word = String::new();
                let include_upper = loop {
                    match chars.get(i) {
                        None => return Err(err(col, "Encountered \"<EOF>\" in a range")),
                        Some(']') => break true,
                        Some('}') => break false,
                        Some(ch) if ch.is_whitespace() => {
                            if !word.is_empty() {
                                words.push(std::mem::take(&mut word));
                            }
                        }
                        Some('"') => {
                            i += 1;
                            while let Some(&ch) = chars.get(i).filter(|ch| **ch != '"') {
                                word.push(ch);
                                i += 1;
                            }
                            if i >= chars.len() {
                                return Err(err(col, "Lexical error: unterminated quoted string"));
                            }
                        }
                        Some('\\') if i + 1 < chars.len() => {
                            i += 1;
                            word.push(chars[i]);
                        }
                        Some(&ch) => word.push(ch),
                    }
                    i += 1;
                };
                i += 1;
                if !word.is_empty() {
                    words.push(word);
                }
                match words.as_slice() {
                    [lower, to, upper] if to == "TO" => Tok::Range {
                        lower: lower.clone(),
                        upper: upper.clone(),
                        include_lower,
                        include_upper,
                    },
                    _ => return Err(err(col, "Encountered a range without \"TO\"")),
                }
            }
            ']' | '}' => return Err(err(col, &format!("Encountered \"{c}\""))),
            _ => {
                let mut text = String::new();
                let mut wild = false;
                // Escaped characters, anywhere in the term, are its own
                // and never wildcards.
                loop {
                    match chars.get(i) {
                        Some('\\') => {
                            let Some(&next) = chars.get(i + 1) else {
                                return Err(err(i + 1, "Lexical error: a trailing backslash"));
                            };
                            text.push(next);
                            i += 2;
                        }
                        Some(&ch) if !special(ch) && operator(&chars[i..]).is_none() => {
                            wild |= matches!(ch, '*' | '?');
                            text.push(ch);
                            i += 1;
                        }
                        _ => break,
                    }
                }
                if text.is_empty() {
                    return Err(err(col, &format!("Encountered \"{c}\"")));
                }
                match text.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Term { text, wild },
                }
            }
        };
        out.push((col, tok));
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    at: usize,
    /// The column just past the end (where `<EOF>` is).
    end: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Conj {
    None,
    And,
    Or,
}

#[derive(Clone, Copy, PartialEq)]
enum Modifier {
    None,
    Required,
    Prohibited,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.at).map(|(_, t)| t.clone());
        self.at += 1;
        t
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(c, _)| *c)
    }

    fn unexpected(&self, t: Tok) -> ParseError {
        ParseError {
            column: self.column(),
            message: format!("Encountered \" {} \"", t.describe()),
        }
    }

    fn eof(&self) -> ParseError {
        ParseError {
            column: self.end,
            message: "Encountered \"<EOF>\"".into(),
        }
    }

    /// Clauses up to `)` or the end, combined as the classic parser's
    /// `addClause` does with `OR` as the default operator.
    fn query(&mut self, field: Option<&str>) -> Result<Query, ParseError> {
        let mut clauses: Vec<(Occur, Query)> = Vec::new();
        loop {
            let conj = match self.peek() {
                None | Some(Tok::Close) => break,
                Some(Tok::And) => {
                    self.next();
                    Conj::And
                }
                Some(Tok::Or) => {
                    self.next();
                    Conj::Or
                }
                Some(_) => Conj::None,
            };
            if conj != Conj::None && clauses.is_empty() {
                // Lucene refuses a leading AND/OR.
                return Err(ParseError {
                    column: self.tokens[self.at - 1].0,
                    message: format!(
                        "Encountered \" {} \"",
                        if conj == Conj::And {
                            "\"AND\""
                        } else {
                            "\"OR\""
                        }
                    ),
                });
            }
            let modifier = match self.peek() {
                Some(Tok::Plus) => {
                    self.next();
                    Modifier::Required
                }
                Some(Tok::Minus | Tok::Not) => {
                    self.next();
                    Modifier::Prohibited
                }
                _ => Modifier::None,
            };
            let clause = self.clause(field)?;
            if conj == Conj::And {
                if let Some(last) = clauses.last_mut() {
                    if last.0 != Occur::MustNot {
                        last.0 = Occur::Must;
                    }
                }
            }
            let prohibited = modifier == Modifier::Prohibited;
            let required = modifier == Modifier::Required || (conj == Conj::And && !prohibited);
            let occur = if prohibited {
                Occur::MustNot
            } else if required {
                Occur::Must
            } else {
                Occur::Should
            };
            clauses.push((occur, clause));
        }
        match clauses.len() {
            0 => Err(match self.peek() {
                Some(t) => self.unexpected(t.clone()),
                None => self.eof(),
            }),
            1 if clauses[0].0 != Occur::MustNot => Ok(clauses.pop().expect("one").1),
            _ => Ok(Query::Bool(clauses)),
        }
    }

    /// One clause: `[field:] (term | phrase | range | (query)) [^boost]`.
    fn clause(&mut self, field: Option<&str>) -> Result<Query, ParseError> {
        let mut field = field.map(str::to_string);
        if let (Some(Tok::Term { text, .. }), Some((_, Tok::Colon))) =
            (self.peek().cloned(), self.tokens.get(self.at + 1))
        {
            self.at += 2;
            field = Some(text);
        }
        let q = match self.next() {
            None => return Err(self.eof()),
            Some(Tok::Open) => {
                let q = self.query(field.as_deref())?;
                match self.next() {
                    Some(Tok::Close) => q,
                    Some(t) => {
                        self.at -= 1;
                        return Err(self.unexpected(t));
                    }
                    None => return Err(self.eof()),
                }
            }
            Some(Tok::Term { text, wild }) => {
                if let Some(Tok::Tilde(n)) = self.peek().cloned() {
                    self.next();
                    let edits = match n.as_deref().map(str::parse::<f64>) {
                        None => 2,
                        Some(Ok(e)) if e >= 1.0 => (e as u32).min(2),
                        // Lucene 4's similarity form (0.5 etc.).
                        Some(Ok(_)) => 1,
                        Some(Err(_)) => 2,
                    };
                    Query::Fuzzy { field, text, edits }
                } else if text == "*" && field.as_deref() == Some("*") {
                    Query::All
                } else if wild {
                    let body = &text[..text.len() - 1];
                    if text.ends_with('*') && !body.contains(['*', '?']) && !body.is_empty() {
                        Query::Prefix {
                            field,
                            prefix: body.to_string(),
                        }
                    } else {
                        Query::Wildcard {
                            field,
                            pattern: text,
                        }
                    }
                } else {
                    Query::Term { field, text }
                }
            }
            Some(Tok::Phrase(text)) => {
                let slop = match self.peek().cloned() {
                    Some(Tok::Tilde(n)) => {
                        self.next();
                        n.and_then(|n| n.parse::<f64>().ok())
                            .map_or(0, |n| n as u32)
                    }
                    _ => 0,
                };
                Query::Phrase { field, text, slop }
            }
            Some(Tok::Range {
                lower,
                upper,
                include_lower,
                include_upper,
            }) => Query::Range {
                field,
                lower: (lower != "*").then_some(lower),
                upper: (upper != "*").then_some(upper),
                include_lower,
                include_upper,
            },
            Some(t) => {
                self.at -= 1;
                return Err(self.unexpected(t));
            }
        };
        if let Some(Tok::Caret(b)) = self.peek().cloned() {
            self.next();
            let boost = b.parse::<f64>().map_err(|_| ParseError {
                column: self.column(),
                message: format!("Encountered a bad boost \"{b}\""),
            })?;
            return Ok(Query::Boost(Box::new(q), boost));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(field: Option<&str>, text: &str) -> Query {
        Query::Term {
            field: field.map(str::to_string),
            text: text.into(),
        }
    }

    #[test]
    fn terms_fields_and_default_or() {
        assert_eq!(parse("foo").unwrap(), term(None, "foo"));
        assert_eq!(parse("title:foo").unwrap(), term(Some("title"), "foo"));
        assert_eq!(
            parse("a b").unwrap(),
            Query::Bool(vec![
                (Occur::Should, term(None, "a")),
                (Occur::Should, term(None, "b"))
            ])
        );
        assert_eq!(
            parse("title:(a b)").unwrap(),
            Query::Bool(vec![
                (Occur::Should, term(Some("title"), "a")),
                (Occur::Should, term(Some("title"), "b"))
            ])
        );
    }

    #[test]
    fn and_makes_both_sides_required_as_lucene_does() {
        assert_eq!(
            parse("a AND b OR c").unwrap(),
            Query::Bool(vec![
                (Occur::Must, term(None, "a")),
                (Occur::Must, term(None, "b")),
                (Occur::Should, term(None, "c")),
            ])
        );
        assert_eq!(
            parse("a && -b").unwrap(),
            Query::Bool(vec![
                (Occur::Must, term(None, "a")),
                (Occur::MustNot, term(None, "b"))
            ])
        );
        assert_eq!(
            parse("+a NOT b !c").unwrap(),
            Query::Bool(vec![
                (Occur::Must, term(None, "a")),
                (Occur::MustNot, term(None, "b")),
                (Occur::MustNot, term(None, "c")),
            ])
        );
        assert_eq!(
            parse("-a").unwrap(),
            Query::Bool(vec![(Occur::MustNot, term(None, "a"))])
        );
    }

    #[test]
    fn phrases_prefixes_wildcards_fuzzy_boosts() {
        assert_eq!(
            parse("body:\"hello \\\"big\\\" world\"~2").unwrap(),
            Query::Phrase {
                field: Some("body".into()),
                text: "hello \"big\" world".into(),
                slop: 2
            }
        );
        assert_eq!(
            parse("foo*").unwrap(),
            Query::Prefix {
                field: None,
                prefix: "foo".into()
            }
        );
        assert_eq!(
            parse("f?o*").unwrap(),
            Query::Wildcard {
                field: None,
                pattern: "f?o*".into()
            }
        );
        assert_eq!(
            parse("roam~1").unwrap(),
            Query::Fuzzy {
                field: None,
                text: "roam".into(),
                edits: 1
            }
        );
        assert_eq!(
            parse("a^2.5").unwrap(),
            Query::Boost(Box::new(term(None, "a")), 2.5)
        );
        assert_eq!(parse("*:*").unwrap(), Query::All);
        assert_eq!(parse("a\\:b").unwrap(), term(None, "a:b"));
        assert_eq!(parse("\\+x").unwrap(), term(None, "+x"));
        assert_eq!(parse("\\+a\\:b\\*").unwrap(), term(None, "+a:b*"));
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse("price:[1 TO 10}").unwrap(),
            Query::Range {
                field: Some("price".into()),
                lower: Some("1".into()),
                upper: Some("10".into()),
                include_lower: true,
                include_upper: false
            }
        );
        assert_eq!(
            parse("name:{* TO \"m z\"]").unwrap(),
            Query::Range {
                field: Some("name".into()),
                lower: None,
                upper: Some("m z".into()),
                include_lower: false,
                include_upper: true
            }
        );
    }

    #[test]
    fn errors_say_where() {
        for (q, column) in [
            ("foo AND", 8),
            ("(a b", 5),
            ("AND a", 1),
            ("title:", 7),
            ("a)", 2),
            ("\"open", 1),
            ("[1 2]", 1),
            ("a:b:c^", 6),
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.column, column, "{q}: {e:?}");
        }
        let e = parse("foo AND").unwrap_err().to_couch("foo AND");
        assert_eq!((e.status, e.error.as_str()), (400, "query_parse_error"));
        assert!(e.reason.contains("column 8"), "{}", e.reason);
    }
}
