//! The user context (`userCtx`) the router hands to the actors.

use serde::{Deserialize, Serialize};

/// Who is making a request, as CouchDB's `userCtx` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCtx {
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// The header the router uses to pass the authenticated user to an actor.
/// The router strips any copy a client sends before forwarding.
pub const USER_CTX_HEADER: &str = "x-settee-user-ctx";

impl UserCtx {
    pub fn admin(name: &str) -> Self {
        UserCtx {
            name: Some(name.to_string()),
            roles: vec!["_admin".to_string()],
        }
    }

    /// The strings of a JSON `roles` array (user documents, JWT claims);
    /// anything else is no roles.
    pub fn roles_from(v: Option<&serde_json::Value>) -> Vec<String> {
        v.and_then(serde_json::Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "_admin")
    }

    /// Encodes the context for [`USER_CTX_HEADER`].
    pub fn to_header(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }

    /// Decodes a header value; anything malformed is the anonymous user.
    pub fn from_header(value: Option<&str>) -> Self {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_garbage() {
        let u = UserCtx::admin("root");
        assert_eq!(UserCtx::from_header(Some(&u.to_header())), u);
        assert!(UserCtx::from_header(Some(&u.to_header())).is_admin());
        assert_eq!(UserCtx::from_header(Some("{nope")), UserCtx::default());
        assert!(!UserCtx::default().is_admin());
    }
}
