//! One-time enrolment tokens (`minica token`, `POST /v1/enroll`).
//!
//! A token is 32 random bytes, base64url without padding (43 characters,
//! 256 bits). The ledger keeps only its SHA-256 ([`TokenRecord::hash`]), with
//! the name and SANs it allows and its expiry; whoever reads the ledger
//! cannot enrol. A token is consumed by one atomic step of the store
//! ([`crate::store::Store::consume_token_and_insert`]), so it enrols once, also when
//! several servers race on one database.

use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ca::Ca;
use crate::error::Error;
use crate::issue::LeafRequest;
use crate::name::{Name, San};

/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// Default token lifetime: 15 minutes, enough to hand a token to a new
/// machine and enrol, short enough that a leaked unused token soon expires.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Longest token lifetime: 30 days. A token is a bearer credential for a
/// certificate; one that lives longer is a standing secret, not enrolment.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Why a token request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `--ttl 0`.
    #[error("--ttl must be longer than zero")]
    ZeroTtl,
    /// `--ttl` over [`MAX_TOKEN_TTL`].
    #[error("--ttl {given}s is longer than the maximum of 30 days ({max}s): a token is a bearer secret, keep it short-lived")]
    TtlTooLong {
        /// The requested lifetime, seconds.
        given: u64,
        /// The maximum, seconds.
        max: u64,
    },
}

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

/// Checks a token lifetime: more than zero, at most [`MAX_TOKEN_TTL`].
pub fn check_ttl(ttl: Duration) -> Result<(), Error> {
    if ttl.is_zero() {
        return Err(Error::Token(TokenError::ZeroTtl));
    }
    if ttl > MAX_TOKEN_TTL {
        return Err(Error::Token(TokenError::TtlTooLong {
            given: ttl.as_secs(),
            max: MAX_TOKEN_TTL.as_secs(),
        }));
    }
    Ok(())
}

impl Ca {
    /// `minica token NAME`: makes a one-time enrolment token for the leaf
    /// `name`, valid `ttl` (at most [`MAX_TOKEN_TTL`]), and stores its hash.
    /// The SANs bound to it are the ones `minica issue NAME` with the same
    /// `sans` (`--dns`, `--ip`, `--uri`) would give: NAME, `sans`, and the
    /// SPIFFE ID. Returns the token string (shown once, never stored) and
    /// its record. Nothing is stored when the request is refused.
    pub fn create_token(
        &self,
        name: &Name,
        sans: &[San],
        ttl: Duration,
    ) -> Result<(String, TokenRecord), Error> {
        check_ttl(ttl)?;
        let mut request = LeafRequest::new(name.clone());
        request.extra_sans = sans.to_vec();
        let sans = self.leaf_sans(&request);
        // Whole seconds: the ledger keeps Unix seconds.
        let now = OffsetDateTime::now_utc();
        let created = now.replace_nanosecond(0).unwrap_or(now);
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = created + time::Duration::seconds(secs);
        let (token, hash) = new_token();
        let record = TokenRecord {
            hash,
            name: name.as_str().to_string(),
            sans,
            created,
            expires,
            used: None,
        };
        self.store().put_token(&record)?;
        Ok((token, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaHome, InitOptions};

    #[test]
    fn create_token_binds_the_default_sans_and_refuses_bad_ttls() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let name: Name = "svc-a".parse().unwrap();
        let (token, record) = ca
            .create_token(&name, &[San::ip("10.0.0.1").unwrap()], DEFAULT_TOKEN_TTL)
            .unwrap();
        assert_eq!(record.hash, token_hash(&token));
        assert_eq!(record.expires - record.created, time::Duration::minutes(15));
        let sans: Vec<String> = record.sans.iter().map(|s| s.to_string()).collect();
        assert!(sans.iter().any(|s| s.contains("svc-a")), "{sans:?}");
        assert!(sans.iter().any(|s| s.contains("10.0.0.1")), "{sans:?}");
        assert!(
            sans.iter()
                .any(|s| s.contains("spiffe://minica.internal/svc-a")),
            "{sans:?}"
        );
        let now = OffsetDateTime::now_utc();
        assert!(matches!(
            ca.store().consume_token(&record.hash, now).unwrap(),
            TokenUse::Consumed(_)
        ));
        for ttl in [Duration::ZERO, MAX_TOKEN_TTL + Duration::from_secs(1)] {
            let err = ca.create_token(&name, &[], ttl).unwrap_err();
            assert!(err.to_string().contains("--ttl"), "{err}");
        }
    }

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
