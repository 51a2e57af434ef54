//! Password hashing as CouchDB stores it: PBKDF2 with a per-user salt.
//!
//! New passwords get PBKDF2-HMAC-SHA256 (`pbkdf2_prf: "sha256"`, CouchDB
//! 3.4+). Imported users may carry the older PBKDF2-HMAC-SHA1 form (no
//! `pbkdf2_prf`, or `"sha"`) or the legacy `simple` scheme
//! (`password_sha = sha1(password + salt)`); both still verify.

use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Iterations for new passwords. CouchDB 3.4 defaults to 600,000, which
/// costs over a second of CPU in a Worker; this count keeps a login under
/// 200 ms there (measured by `make bench`). Configurable with
/// `PASSWORD_ITERATIONS`.
pub const DEFAULT_ITERATIONS: u32 = 100_000;

/// The hash function under PBKDF2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    Sha1,
    Sha256,
}

/// What a stored user (or a hashed admin secret) keeps to verify a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Pbkdf2 {
        prf: Prf,
        /// Hex-encoded derived key.
        derived_key: String,
        salt: String,
        iterations: u32,
    },
    /// `password_sha = sha1(password ++ salt)`, hex.
    Simple { password_sha: String, salt: String },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn derive(prf: Prf, password: &str, salt: &str, iterations: u32) -> String {
    let (p, s) = (password.as_bytes(), salt.as_bytes());
    match prf {
        Prf::Sha1 => hex(&pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(p, s, iterations)),
        Prf::Sha256 => hex(&pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(p, s, iterations)),
    }
}

/// SHA-256 of a string, hex-encoded.
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

impl Credentials {
    /// Hashes a new password with a fresh salt.
    pub fn hash(password: &str, iterations: u32) -> Credentials {
        let salt = crate::uuids::random_hex();
        let iterations = iterations.max(1);
        Credentials::Pbkdf2 {
            prf: Prf::Sha256,
            derived_key: derive(Prf::Sha256, password, &salt, iterations),
            salt,
            iterations,
        }
    }

    pub fn verify(&self, password: &str) -> bool {
        match self {
            Credentials::Pbkdf2 {
                prf,
                derived_key,
                salt,
                iterations,
            } => constant_time_eq(&derive(*prf, password, salt, *iterations), derived_key),
            Credentials::Simple { password_sha, salt } => {
                let mut h = Sha1::new();
                h.update(password.as_bytes());
                h.update(salt.as_bytes());
                constant_time_eq(&hex(&h.finalize()), password_sha)
            }
        }
    }

    /// The salt, which also keys session cookies: a new password means a
    /// new salt, so old cookies stop working.
    pub fn salt(&self) -> &str {
        match self {
            Credentials::Pbkdf2 { salt, .. } | Credentials::Simple { salt, .. } => salt,
        }
    }

    /// Reads the credentials of a `_users` document.
    pub fn from_user_doc(doc: &Map<String, Value>) -> Option<Credentials> {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).map(String::from);
        match doc.get("password_scheme").and_then(Value::as_str) {
            Some("pbkdf2") => Some(Credentials::Pbkdf2 {
                prf: match doc.get("pbkdf2_prf").and_then(Value::as_str) {
                    Some("sha256") => Prf::Sha256,
                    None | Some("sha") | Some("sha1") => Prf::Sha1,
                    Some(_) => return None,
                },
                derived_key: s("derived_key")?,
                salt: s("salt")?,
                iterations: doc.get("iterations")?.as_u64()?.try_into().ok()?,
            }),
            Some("simple") | None => Some(Credentials::Simple {
                password_sha: s("password_sha")?,
                salt: s("salt")?,
            }),
            Some(_) => None,
        }
    }

    /// Writes the credentials into a `_users` document as CouchDB does.
    pub fn write_to(&self, doc: &mut Map<String, Value>) {
        match self {
            Credentials::Pbkdf2 {
                prf,
                derived_key,
                salt,
                iterations,
            } => {
                doc.insert("password_scheme".into(), json!("pbkdf2"));
                doc.insert(
                    "pbkdf2_prf".into(),
                    json!(if *prf == Prf::Sha256 { "sha256" } else { "sha" }),
                );
                doc.insert("iterations".into(), json!(iterations));
                doc.insert("derived_key".into(), json!(derived_key));
                doc.insert("salt".into(), json!(salt));
            }
            Credentials::Simple { password_sha, salt } => {
                doc.insert("password_scheme".into(), json!("simple"));
                doc.insert("password_sha".into(), json!(password_sha));
                doc.insert("salt".into(), json!(salt));
            }
        }
    }

    /// Parses an admin secret: plaintext, or CouchDB's hashed forms
    /// `-pbkdf2-KEY,SALT,ITERATIONS` (SHA-1) and
    /// `-pbkdf2:sha256-KEY,SALT,ITERATIONS`.
    pub fn from_admin_secret(secret: &str) -> AdminSecret {
        let hashed = |rest: &str, prf| {
            let mut parts = rest.splitn(3, ',');
            let (k, s, i) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Credentials::Pbkdf2 {
                prf,
                derived_key: k.to_ascii_lowercase(),
                salt: s.to_string(),
                iterations: i.trim().parse().ok()?,
            })
        };
        let parsed = if let Some(rest) = secret.strip_prefix("-pbkdf2:sha256-") {
            hashed(rest, Prf::Sha256)
        } else if let Some(rest) = secret.strip_prefix("-pbkdf2-") {
            hashed(rest, Prf::Sha1)
        } else {
            None
        };
        match parsed {
            Some(c) => AdminSecret::Hashed(c),
            None => AdminSecret::Plain(secret.to_string()),
        }
    }
}

/// A server admin's configured password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminSecret {
    Plain(String),
    Hashed(Credentials),
}

impl AdminSecret {
    pub fn verify(&self, password: &str) -> bool {
        match self {
            AdminSecret::Plain(p) => constant_time_eq(p, password),
            AdminSecret::Hashed(c) => c.verify(password),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_known_vectors() {
        // RFC 6070 (SHA-1) and the matching SHA-256 vector.
        assert_eq!(
            derive(Prf::Sha1, "password", "salt", 2),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
        assert_eq!(
            derive(Prf::Sha256, "password", "salt", 1),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
    }

    #[test]
    fn hash_verify_and_store() {
        let c = Credentials::hash("s3cret", 10);
        assert!(c.verify("s3cret"));
        assert!(!c.verify("s3cret "));
        let mut doc = Map::new();
        c.write_to(&mut doc);
        assert_eq!(doc["password_scheme"], "pbkdf2");
        assert_eq!(doc["pbkdf2_prf"], "sha256");
        assert_eq!(Credentials::from_user_doc(&doc), Some(c.clone()));
        assert_ne!(
            Credentials::hash("s3cret", 10).salt(),
            c.salt(),
            "fresh salt each time"
        );
    }

    #[test]
    fn imported_users_still_verify() {
        let sha1 = json!({"password_scheme": "pbkdf2", "iterations": 2, "salt": "salt",
                          "derived_key": "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"});
        assert!(Credentials::from_user_doc(sha1.as_object().unwrap())
            .unwrap()
            .verify("password"));
        // simple: sha1("password" ++ "salt")
        let simple =
            json!({"password_sha": "c88e9c67041a74e0357befdff93f87dde0904214", "salt": "salt"});
        let c = Credentials::from_user_doc(simple.as_object().unwrap()).unwrap();
        assert!(c.verify("password"));
        assert!(!c.verify("nope"));
        assert_eq!(
            Credentials::from_user_doc(json!({"name": "x"}).as_object().unwrap()),
            None
        );
    }

    #[test]
    fn admin_secrets() {
        assert!(Credentials::from_admin_secret("plain").verify("plain"));
        let hashed = Credentials::from_admin_secret(
            "-pbkdf2-ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957,salt,2",
        );
        assert!(matches!(hashed, AdminSecret::Hashed(_)));
        assert!(hashed.verify("password"));
        assert!(!hashed.verify("-pbkdf2-ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957,salt,2"));
        let s256 = Credentials::from_admin_secret(
            "-pbkdf2:sha256-120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b,salt,1",
        );
        assert!(s256.verify("password"));
        // A malformed hashed form is taken literally.
        assert!(Credentials::from_admin_secret("-pbkdf2-x").verify("-pbkdf2-x"));
    }
}
