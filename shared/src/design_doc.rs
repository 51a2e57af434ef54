//! The shape of a design document, checked as CouchDB 3 checks it when one
//! is saved (`couch_mrview:validate_ddoc_fields`): each known field must
//! have its type, and every view a map. A bad design document is refused
//! with 400 `invalid_design_doc` naming the field, so no reader later finds
//! a view that cannot be served. (Compiling the functions is the actor's
//! part: `db_actor::design::validate_on_save`.)

use crate::error::{CouchError, CouchResult};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    String,
    Object,
    Array,
    Boolean,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Object => "object",
            Type::Array => "array",
            Type::Boolean => "boolean",
        }
    }

    fn matches(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (Type::String, Value::String(_))
                | (Type::Object, Value::Object(_))
                | (Type::Array, Value::Array(_))
                | (Type::Boolean, Value::Bool(_))
        )
    }
}

/// One step of a checked path: a named member, or every member.
#[derive(Clone, Copy)]
enum Step {
    Key(&'static str),
    Any,
}

use Step::{Any, Key};
use Type::{Array, Boolean, Object, String as Str};

/// Whether a design document's views are Mango's (`"language": "query"`),
/// whose maps are objects, not functions.
pub fn is_query_language(ddoc: &Map<String, Value>) -> bool {
    ddoc.get("language").and_then(Value::as_str) == Some("query")
}

/// Checks a design document body as CouchDB does on save.
pub fn validate_fields(ddoc: &Map<String, Value>) -> CouchResult<()> {
    let map_type: &[Type] = if is_query_language(ddoc) {
        &[Object]
    } else {
        &[Str]
    };
    let checks: [(&[Step], &[Type]); 14] = [
        (&[Key("filters"), Any], &[Object, Str]),
        (&[Key("language")], &[Str]),
        (&[Key("lists"), Any], &[Object, Str]),
        (&[Key("options")], &[Object]),
        (&[Key("options"), Key("include_design")], &[Boolean]),
        (&[Key("options"), Key("local_seq")], &[Boolean]),
        (&[Key("options"), Key("partitioned")], &[Boolean]),
        (&[Key("rewrites")], &[Str, Array]),
        (&[Key("shows"), Any], &[Object, Str]),
        (&[Key("updates"), Any], &[Object, Str]),
        (&[Key("validate_doc_update")], &[Str]),
        (&[Key("views"), Key("lib")], &[Object]),
        (&[Key("views"), Any, Key("map")], map_type),
        (&[Key("views"), Any, Key("reduce")], &[Str]),
    ];
    let root = Value::Object(ddoc.clone());
    for (path, types) in checks {
        check(&root, path, types, &mut Vec::new())?;
    }
    if let Some(Value::Object(views)) = ddoc.get("views") {
        for (name, view) in views {
            if name != "lib" && view.get("map").is_none() {
                return Err(invalid(format!("View `{name}` must contain map function")));
            }
        }
    }
    Ok(())
}

/// Checks `types` at the end of `path` below `v`, where present. Every
/// step but the last must reach an object (that is a check of its own:
/// `filters` itself must be an object, and so must each view).
fn check(v: &Value, path: &[Step], types: &[Type], at: &mut Vec<String>) -> CouchResult<()> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(());
    };
    let Value::Object(members) = v else {
        return Ok(());
    };
    let children: Vec<(&String, &Value)> = match step {
        Key(k) => members.get_key_value(*k).into_iter().collect(),
        Any => members.iter().collect(),
    };
    for (name, child) in children {
        at.push(name.clone());
        let wanted: &[Type] = if rest.is_empty() { types } else { &[Object] };
        if !wanted.iter().any(|t| t.matches(child)) {
            let names: Vec<&str> = wanted.iter().map(|t| t.name()).collect();
            return Err(invalid(format!(
                "`{}` field must have {} type",
                at.join("."),
                names.join(" or ")
            )));
        }
        check(child, rest, types, at)?;
        at.pop();
    }
    Ok(())
}

fn invalid(reason: String) -> CouchError {
    CouchError::new(400, "invalid_design_doc", reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(v: Value) -> Option<String> {
        validate_fields(v.as_object().unwrap()).err().map(|e| {
            assert_eq!((e.status, e.error.as_str()), (400, "invalid_design_doc"));
            e.reason
        })
    }

    #[test]
    fn well_formed_design_documents_pass() {
        assert_eq!(reason(json!({})), None);
        let full = json!({
            "language": "javascript",
            "options": {"include_design": true, "local_seq": false, "partitioned": false},
            "views": {
                "lib": {"util": "exports.x = 1"},
                "v": {"map": "function(doc){}", "reduce": "_count", "options": {"collation": "raw"}},
            },
            "filters": {"f": "function(){}"},
            "shows": {"s": "function(){}"},
            "lists": {"l": "function(){}"},
            "updates": {"u": "function(){}"},
            "validate_doc_update": "function(){}",
            "rewrites": [{"from": "/", "to": "index.html"}],
            "autoupdate": false,
            "anything_else": 1,
        });
        assert_eq!(reason(full), None);
        // Mango's design documents have object maps.
        let mango = json!({"language": "query", "views": {"i": {"map": {"fields": {"a": "asc"}}, "reduce": "_count"}}});
        assert_eq!(reason(mango), None);
    }

    #[test]
    fn wrong_types_are_named_as_couchdb_names_them() {
        let cases = [
            (json!({"views": "x"}), "`views` field must have object type"),
            (
                json!({"views": {"v": 1}}),
                "`views.v` field must have object type",
            ),
            (
                json!({"views": {"v": {"map": 1}}}),
                "`views.v.map` field must have string type",
            ),
            (
                json!({"views": {"v": {"map": "f", "reduce": 2}}}),
                "`views.v.reduce` field must have string type",
            ),
            (
                json!({"views": {"lib": "x"}}),
                "`views.lib` field must have object type",
            ),
            (
                json!({"language": 1}),
                "`language` field must have string type",
            ),
            (
                json!({"filters": {"f": 1}}),
                "`filters.f` field must have object or string type",
            ),
            (json!({"shows": []}), "`shows` field must have object type"),
            (
                json!({"options": {"partitioned": "yes"}}),
                "`options.partitioned` field must have boolean type",
            ),
            (
                json!({"rewrites": 3}),
                "`rewrites` field must have string or array type",
            ),
            (
                json!({"validate_doc_update": {}}),
                "`validate_doc_update` field must have string type",
            ),
            (
                json!({"language": "query", "views": {"i": {"map": "function(){}"}}}),
                "`views.i.map` field must have object type",
            ),
            (
                json!({"views": {"v": {"reduce": "_sum"}}}),
                "View `v` must contain map function",
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(reason(doc.clone()).as_deref(), Some(want), "{doc}");
        }
    }
}
