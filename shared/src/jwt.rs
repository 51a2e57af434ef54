//! JWT authentication (`Authorization: Bearer`), as CouchDB's
//! `jwt_authentication_handler` does it: HS256, RS256 and ES256 tokens
//! verified against configured keys, `sub` as the user name, roles from a
//! configurable claim path, `exp`/`nbf` checked, some claims required.
//!
//! Keys are configured like CouchDB's `[jwt_keys]` section, as a JSON
//! object: `{"hmac:_default": "<base64 secret>", "rsa:<kid>": "<PEM>",
//! "ec:<kid>": "<PEM>"}`; a token's `kid` header picks the key
//! (`_default` when absent). `alg: none` and every other algorithm are
//! refused.

use crate::error::CouchError;
use crate::user::UserCtx;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// `alg-family:kid` → key material.
    pub keys: Map<String, Value>,
    /// Where roles are in the claims, dot-separated (`\.` escapes a dot).
    pub roles_claim_path: String,
    /// Claims that must be present (e.g. `exp`, `iat`).
    pub required_claims: Vec<String>,
}

impl JwtConfig {
    /// Reads `JWT_KEYS`, `JWT_ROLES_CLAIM_PATH` and `JWT_REQUIRED_CLAIMS`;
    /// `None` when no keys are configured (JWT is then off).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<JwtConfig>, String> {
        let Some(keys) = get("JWT_KEYS").filter(|k| !k.trim().is_empty()) else {
            return Ok(None);
        };
        let keys: Map<String, Value> = serde_json::from_str(&keys)
            .map_err(|e| format!("JWT_KEYS is not a JSON object: {e}"))?;
        Ok(Some(JwtConfig {
            keys,
            roles_claim_path: get("JWT_ROLES_CLAIM_PATH")
                .unwrap_or_else(|| "_couchdb\\.roles".into()),
            required_claims: get("JWT_REQUIRED_CLAIMS")
                .map(|c| {
                    c.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }
}

fn unauthorized(reason: &str) -> CouchError {
    CouchError::unauthorized(reason)
}

fn decode_json(part: &str) -> Result<Map<String, Value>, CouchError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| unauthorized("Token is not valid base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(unauthorized("Token part is not a JSON object")),
    }
}

/// Verifies a token and returns who it names.
pub fn authenticate(token: &str, cfg: &JwtConfig, now: u64) -> Result<UserCtx, CouchError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(unauthorized("Token is not a JWS compact serialisation"));
    };
    let header = decode_json(h)?;
    let claims = decode_json(p)?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| unauthorized("Token signature is not valid base64url"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("_default");
    let family = match alg {
        "HS256" => "hmac",
        "RS256" => "rsa",
        "ES256" => "ec",
        _ => return Err(unauthorized(&format!("Unsupported token algorithm: {alg}"))),
    };
    let key = cfg
        .keys
        .get(&format!("{family}:{kid}"))
        .and_then(Value::as_str)
        .ok_or_else(|| unauthorized("No key for this token"))?;
    let signed = format!("{h}.{p}");
    if !verify(alg, key, signed.as_bytes(), &signature) {
        return Err(unauthorized("Token signature is invalid"));
    }
    check_claims(&claims, cfg, now)?;
    let name = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| unauthorized("Token has no sub claim"))?;
    let roles = UserCtx::roles_from(claim_at(&claims, &cfg.roles_claim_path));
    Ok(UserCtx {
        name: Some(name.to_string()),
        roles,
    })
}

fn verify(alg: &str, key: &str, message: &[u8], signature: &[u8]) -> bool {
    match alg {
        "HS256" => {
            let Ok(secret) = STANDARD.decode(key.trim()) else {
                return false;
            };
            let mut m = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key length");
            m.update(message);
            m.verify_slice(signature).is_ok()
        }
        "RS256" => {
            use rsa::pkcs8::DecodePublicKey;
            use rsa::signature::Verifier;
            let Ok(public) = rsa::RsaPublicKey::from_public_key_pem(key.trim()) else {
                return false;
            };
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
            rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| vk.verify(message, &sig).is_ok())
        }
        "ES256" => {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let Ok(vk) = p256::ecdsa::VerifyingKey::from_public_key_pem(key.trim()) else {
                return false;
            };
            p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| vk.verify(message, &sig).is_ok())
        }
        _ => false,
    }
}

fn check_claims(claims: &Map<String, Value>, cfg: &JwtConfig, now: u64) -> Result<(), CouchError> {
    for c in &cfg.required_claims {
        if !claims.contains_key(c) {
            return Err(unauthorized(&format!(
                "Token is missing the required claim {c}"
            )));
        }
    }
    let number = |k: &str| claims.get(k).and_then(Value::as_f64);
    if let Some(exp) = number("exp") {
        if (now as f64) >= exp {
            return Err(unauthorized("Token has expired"));
        }
    } else if claims.contains_key("exp") {
        return Err(unauthorized("Token exp claim is not a number"));
    }
    if let Some(nbf) = number("nbf") {
        if (now as f64) < nbf {
            return Err(unauthorized("Token is not yet valid"));
        }
    }
    Ok(())
}

/// Follows a dot-separated path (`\.` is a literal dot) into the claims.
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => segments.last_mut()?.push(chars.next().unwrap_or('\\')),
            '.' => segments.push(String::new()),
            c => segments.last_mut()?.push(c),
        }
    }
    // CouchDB's historical default names a top-level "_couchdb.roles" key;
    // try the whole path as one key first.
    if let Some(v) = claims.get(path.replace("\\.", ".").as_str()) {
        return Some(v);
    }
    let mut cur = claims.get(&segments[0])?;
    for s in &segments[1..] {
        cur = cur.get(s)?;
    }
    Some(cur)
}

/// Signs an HS256 token (for tests and tools).
pub fn sign_hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    if let Some(k) = kid {
        header["kid"] = Value::from(k);
    }
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> JwtConfig {
        JwtConfig::from_lookup(|k| match k {
            "JWT_KEYS" => Some(json!({"hmac:_default": STANDARD.encode("sekrit"), "hmac:k2": STANDARD.encode("other")}).to_string()),
            "JWT_REQUIRED_CLAIMS" => Some("exp".into()),
            _ => None,
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn hs256_tokens() {
        let c = cfg();
        let good = json!({"sub": "ann", "exp": 2000, "_couchdb.roles": ["team"]});
        let u = authenticate(&sign_hs256(&good, b"sekrit", None), &c, 1000).unwrap();
        assert_eq!(u.name.as_deref(), Some("ann"));
        assert_eq!(u.roles, vec!["team"]);
        assert!(authenticate(&sign_hs256(&good, b"other", Some("k2")), &c, 1000).is_ok());
        let nested = JwtConfig {
            roles_claim_path: "app.roles".into(),
            ..c.clone()
        };
        let t = sign_hs256(
            &json!({"sub": "x", "exp": 2000, "app": {"roles": ["r"]}}),
            b"sekrit",
            None,
        );
        assert_eq!(authenticate(&t, &nested, 1000).unwrap().roles, vec!["r"]);
        let bad: Vec<(String, &str)> = vec![
            (sign_hs256(&good, b"wrong", None), "signature"),
            (sign_hs256(&good, b"sekrit", Some("nokey")), "No key"),
            (
                sign_hs256(&json!({"sub": "ann", "exp": 500}), b"sekrit", None),
                "expired",
            ),
            (
                sign_hs256(&json!({"sub": "ann"}), b"sekrit", None),
                "required",
            ),
            (
                sign_hs256(
                    &json!({"sub": "ann", "exp": 2000, "nbf": 1500}),
                    b"sekrit",
                    None,
                ),
                "not yet",
            ),
            (sign_hs256(&json!({"exp": 2000}), b"sekrit", None), "sub"),
            ("a.b".into(), "JWS"),
            ("!!.!!.!!".into(), "base64url"),
        ];
        for (t, why) in bad {
            let e = authenticate(&t, &c, 1000).unwrap_err();
            assert_eq!(e.status, 401);
            assert!(e.reason.contains(why), "{why}: {}", e.reason);
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(r#"{"sub":"root","exp":2000}"#);
        let e = authenticate(&format!("{h}.{p}."), &cfg(), 1000).unwrap_err();
        assert!(e.reason.contains("Unsupported"));
    }

    #[test]
    fn rs256_verifies() {
        use rsa::pkcs8::EncodePublicKey;
        use rsa::signature::{SignatureEncoding, Signer};
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let pem = private
            .to_public_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"r1"}"#);
        let p = URL_SAFE_NO_PAD.encode(r#"{"sub":"rsuser","exp":2000,"_couchdb.roles":["x"]}"#);
        let sig = signer.sign(format!("{h}.{p}").as_bytes()).to_vec();
        let token = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(&sig));
        let c = JwtConfig {
            keys: json!({"rsa:r1": pem}).as_object().unwrap().clone(),
            roles_claim_path: "_couchdb\\.roles".into(),
            ..Default::default()
        };
        let u = authenticate(&token, &c, 1000).unwrap();
        assert_eq!(
            (u.name.as_deref(), u.roles.clone()),
            (Some("rsuser"), vec!["x".to_string()])
        );
        let mut forged = sig.clone();
        forged[10] ^= 1;
        let bad = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(&forged));
        assert!(authenticate(&bad, &c, 1000).is_err());
    }

    #[test]
    fn es256_and_rs256_verify() {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::EncodePublicKey;
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"e1"}"#);
        let p = URL_SAFE_NO_PAD.encode(r#"{"sub":"ecuser","exp":2000}"#);
        let sig: p256::ecdsa::Signature = sk.sign(format!("{h}.{p}").as_bytes());
        let token = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        let c = JwtConfig {
            keys: json!({"ec:e1": pem}).as_object().unwrap().clone(),
            ..Default::default()
        };
        assert_eq!(
            authenticate(&token, &c, 1000).unwrap().name.as_deref(),
            Some("ecuser")
        );
        // The same token claiming HS256 with the PEM as an HMAC key fails.
        let h2 = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"e1"}"#);
        assert!(authenticate(
            &format!("{h2}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes())),
            &c,
            1000
        )
        .is_err());
    }
}
