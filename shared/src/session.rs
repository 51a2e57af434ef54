//! `AuthSession` cookies, as CouchDB's cookie authentication issues them.
//!
//! The value is `base64url(NAME ":" HEXTIME ":" MAC)` where MAC is
//! HMAC-SHA256 over `NAME ":" HEXTIME` keyed with the server secret joined
//! to the user's password salt. Binding the salt means a password change
//! (which draws a new salt) invalidates every cookie issued before it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const COOKIE_NAME: &str = "AuthSession";
/// CouchDB's `[chttpd_auth] timeout`: seconds a session lasts.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// Length of the HMAC-SHA256 tag at the end of a cookie.
const MAC_LEN: usize = 32;

fn mac(secret: &str, salt: &str, message: &str) -> Vec<u8> {
    let mut key = secret.as_bytes().to_vec();
    key.extend_from_slice(salt.as_bytes());
    let mut m = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A cookie value for `name`, issued at `now` (seconds since the epoch).
pub fn issue(name: &str, salt: &str, secret: &str, now: u64) -> String {
    let message = format!("{name}:{now:X}");
    let mut raw = message.clone().into_bytes();
    raw.push(b':');
    raw.extend(mac(secret, salt, &message));
    URL_SAFE_NO_PAD.encode(raw)
}

/// A cookie split into its parts, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub name: String,
    pub issued: u64,
    message: String,
    mac: Vec<u8>,
}

/// Splits a cookie value; `None` if it is not one of ours.
pub fn parse(value: &str) -> Option<Parsed> {
    let raw = URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()?;
    // The MAC is binary and may itself hold ':' bytes, so it is cut off by
    // its fixed length; the name may contain ':', the time is the last part.
    let split = raw.len().checked_sub(MAC_LEN + 1)?;
    if raw[split] != b':' {
        return None;
    }
    let (head, mac) = (&raw[..split], raw[split + 1..].to_vec());
    let head = std::str::from_utf8(head).ok()?;
    let (name, time) = head.rsplit_once(':')?;
    Some(Parsed {
        name: name.to_string(),
        issued: u64::from_str_radix(time, 16).ok()?,
        message: head.to_string(),
        mac,
    })
}

/// What a verified cookie means for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Valid and past half its life: the response carries a fresh cookie.
    Refresh,
    Invalid,
}

impl Parsed {
    /// Checks the MAC (in constant time) and the age.
    pub fn verify(&self, salt: &str, secret: &str, now: u64, timeout: u64) -> Verdict {
        let mut m = Hmac::<Sha256>::new_from_slice(&[secret.as_bytes(), salt.as_bytes()].concat())
            .expect("HMAC takes any key length");
        m.update(self.message.as_bytes());
        if m.verify_slice(&self.mac).is_err() {
            return Verdict::Invalid;
        }
        let age = now.saturating_sub(self.issued);
        if self.issued > now + 60 || age >= timeout {
            Verdict::Invalid
        } else if age * 2 >= timeout {
            Verdict::Refresh
        } else {
            Verdict::Valid
        }
    }
}

/// The `Set-Cookie` header value for a session cookie.
pub fn set_cookie(value: &str, timeout: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Version=1; Path=/; Max-Age={timeout}; HttpOnly; SameSite=Lax{secure}")
}

/// The `Set-Cookie` header value that ends a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Version=1; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// The `AuthSession` value in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let c = issue("ann:x", "salt1", "secret", 1000);
        let p = parse(&c).unwrap();
        assert_eq!((p.name.as_str(), p.issued), ("ann:x", 1000));
        assert_eq!(p.verify("salt1", "secret", 1100, 600), Verdict::Valid);
        assert_eq!(p.verify("salt1", "secret", 1400, 600), Verdict::Refresh);
        assert_eq!(
            p.verify("salt1", "secret", 1600, 600),
            Verdict::Invalid,
            "expired"
        );
        assert_eq!(
            p.verify("salt2", "secret", 1100, 600),
            Verdict::Invalid,
            "password changed"
        );
        assert_eq!(
            p.verify("salt1", "other", 1100, 600),
            Verdict::Invalid,
            "other secret"
        );
        // Another name with the same MAC does not verify.
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[0] = b'b';
        let forged = parse(&URL_SAFE_NO_PAD.encode(raw)).unwrap();
        assert_eq!(
            forged.verify("salt1", "secret", 1100, 600),
            Verdict::Invalid
        );
        assert!(parse("!!!").is_none());
        assert!(parse(&URL_SAFE_NO_PAD.encode("nocolons")).is_none());
    }

    /// A MAC holding a ':' byte (about one cookie in eight) still parses.
    #[test]
    fn macs_containing_colons_parse() {
        let mut with_colon = 0;
        for now in 1000..1200 {
            let c = issue("pat", "salt", "secret", now);
            let raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
            with_colon += usize::from(raw[raw.len() - MAC_LEN..].contains(&b':'));
            let p = parse(&c).unwrap();
            assert_eq!((p.name.as_str(), p.issued), ("pat", now));
            assert_eq!(p.verify("salt", "secret", now, 600), Verdict::Valid);
        }
        assert!(with_colon > 0, "the sample covers MACs with ':'");
    }

    #[test]
    fn cookie_headers() {
        assert_eq!(from_cookie_header("a=1; AuthSession=xyz; b=2"), Some("xyz"));
        assert_eq!(from_cookie_header("AuthSession="), None);
        assert!(set_cookie("v", 600, false).starts_with("AuthSession=v; Version=1; Path=/"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
