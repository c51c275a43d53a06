//! One-time enrolment tokens (`minica token`, `POST /v1/enroll`).
//!
//! A token is 32 random bytes, base64url without padding (43 characters,
//! 256 bits). The ledger keeps only its SHA-256 ([`TokenRecord::hash`]), with
//! the name and SANs it allows and its expiry; whoever reads the ledger
//! cannot enrol. A token is consumed by one atomic step of the store
//! ([`crate::store::Store::consume_token`]), so it enrols once, also when
//! several servers race on one database.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::name::San;

/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// A one-time enrolment token as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// SHA-256 of the token string, lowercase hex: the ledger key.
    pub hash: String,
    /// The leaf name the token enrols.
    pub name: String,
    /// The SANs the leaf gets (and the only ones its CSR may ask for).
    pub sans: Vec<San>,
    /// When the token was made.
    #[serde(with = "crate::record::unix_time")]
    pub created: OffsetDateTime,
    /// After this instant the token is refused.
    #[serde(with = "crate::record::unix_time")]
    pub expires: OffsetDateTime,
    /// When the token was consumed, if it was.
    #[serde(default, with = "crate::record::unix_time_opt")]
    pub used: Option<OffsetDateTime>,
}

/// What [`crate::store::Store::consume_token`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// The token was valid and is now marked used (by this call, and by no
    /// other): enrol with it.
    Consumed(TokenRecord),
    /// No token has this hash.
    Unknown,
    /// The token was already used (at `record.used`).
    AlreadyUsed(TokenRecord),
    /// The token expired (at `record.expires`) unused.
    Expired(TokenRecord),
}

/// A new random token string (never stored) and its hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The ledger key of a token: SHA-256 of its string, lowercase hex.
/// Surrounding whitespace (a pasted newline) is ignored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl TokenRecord {
    /// The decision for this record at `now`, before any change: what
    /// `consume_token` returns when it does not consume.
    pub fn refusal_at(&self, now: OffsetDateTime) -> Option<TokenUse> {
        if self.used.is_some() {
            Some(TokenUse::AlreadyUsed(self.clone()))
        } else if now >= self.expires {
            Some(TokenUse::Expired(self.clone()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, token_hash(&format!("{a}\n")));
        assert_ne!(ha, hb);
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a));
    }
}
