//! Who is calling: the master key, a virtual key, or nobody (auth off). Keys are compared through
//! their SHA-256 in constant time; the secret itself is never stored or logged.

use crate::core::event::Name;
use crate::core::router::Router;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The master key: every model, admin endpoints.
    Admin,
    /// A virtual key, by its non-secret id.
    Key(Name),
    /// No master key is configured: auth is off.
    Anonymous,
}

/// The key a client sent: `Authorization: Bearer`, `x-api-key`, `api-key` or
/// `x-litellm-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let k = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !k.is_empty() {
            return Some(k);
        }
    }
    for h in ["x-api-key", "api-key", "x-litellm-api-key"] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            if !v.trim().is_empty() {
                return Some(v.trim());
            }
        }
    }
    None
}

pub fn sha256_hex(s: &str) -> String {
    crate::config::load::hex(&Sha256::digest(s.as_bytes()))
}

/// SHA-256 of the master key, computed once.
#[derive(Clone)]
pub struct MasterKey(Option<[u8; 32]>);

impl MasterKey {
    pub fn new(key: Option<&str>) -> MasterKey {
        MasterKey(key.map(|k| Sha256::digest(k.as_bytes()).into()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    pub fn matches(&self, presented: &str) -> bool {
        match &self.0 {
            None => false,
            Some(h) => {
                let p: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
                bool::from(h.ct_eq(&p))
            }
        }
    }
}

/// Authenticates a request. `Err` is the 401 message.
pub fn authenticate(
    master: &MasterKey,
    router: &Router,
    headers: &HeaderMap,
) -> Result<Caller, String> {
    let presented = presented_key(headers);
    if let Some(k) = presented {
        if master.matches(k) {
            return Ok(Caller::Admin);
        }
        if let Some(ks) = router.key_by_hash(&sha256_hex(k)) {
            return Ok(Caller::Key(Name::from(ks.def.id.as_str())));
        }
    }
    if !master.is_set() {
        return Ok(Caller::Anonymous);
    }
    Err(match presented {
        None => "Authentication Error, No api key passed in.".into(),
        Some(_) => "Authentication Error, Invalid proxy server token passed. Received API key (hashed) does not match any key.".into(),
    })
}
