//! The ledger's record of one certificate.

use std::fmt;

use time::OffsetDateTime;

use crate::crl::RevocationReason;
use crate::key::KeyType;
use crate::name::San;
use crate::serial::Serial;

/// What a certificate is for in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// A self-signed root (trust anchor).
    Root,
    /// An intermediate CA, signed by a root, that signs leaves.
    Intermediate,
    /// An end-entity certificate.
    Leaf,
}

impl CertKind {
    /// `root`, `intermediate` or `leaf`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Root => "root",
            CertKind::Intermediate => "intermediate",
            CertKind::Leaf => "leaf",
        }
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which TLS side a leaf may act as (its extended key usage).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// serverAuth only (`--server`).
    Server,
    /// clientAuth only (`--client`).
    Client,
    /// serverAuth and clientAuth (the default).
    #[default]
    Both,
}

impl Profile {
    /// `server`, `client` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Client => "client",
            Profile::Both => "both",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored status of a certificate. "Expired" is not stored: it follows
/// from `not_after` (see [`CertRecord::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In use.
    Active,
    /// Revoked (see [`CertRecord::revocation`]).
    Revoked,
    /// Replaced by a renewal or rotation (see [`CertRecord::superseded_by`]).
    Superseded,
}

/// The status shown to users: the stored one, with expiry applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayStatus {
    /// Active and within its validity.
    Active,
    /// Active but past `not_after`.
    Expired,
    /// Revoked.
    Revoked,
    /// Superseded.
    Superseded,
}

impl DisplayStatus {
    /// `active`, `expired`, `revoked` or `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            DisplayStatus::Active => "active",
            DisplayStatus::Expired => "expired",
            DisplayStatus::Revoked => "revoked",
            DisplayStatus::Superseded => "superseded",
        }
    }
}

impl fmt::Display for DisplayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    /// When it was revoked (the first revocation is kept).
    #[serde(with = "unix_time")]
    pub at: OffsetDateTime,
    /// Why (stored as its RFC 5280 code).
    #[serde(with = "reason_code")]
    pub reason: RevocationReason,
}

/// One certificate in the ledger. Every certificate minica issues (roots,
/// intermediates, leaves) has one, written and flushed before the
/// certificate is handed out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertRecord {
    /// The serial number (the ledger key).
    pub serial: Serial,
    /// The NAME (for CA certificates, their subject CN).
    pub name: String,
    /// Root, intermediate or leaf.
    pub kind: CertKind,
    /// The leaf's EKU profile; `None` for CA certificates.
    pub profile: Option<Profile>,
    /// The subject key's type.
    pub key_type: KeyType,
    /// Subject alternative names (empty for CA certificates).
    pub sans: Vec<San>,
    /// Start of validity.
    #[serde(with = "unix_time")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "unix_time")]
    pub not_after: OffsetDateTime,
    /// The issuer's serial (a root's is its own).
    pub issuer_serial: Serial,
    /// Stored status.
    pub status: Status,
    /// Set when revoked.
    #[serde(default)]
    pub revocation: Option<Revocation>,
    /// The certificate that replaced this one.
    #[serde(default)]
    pub superseded_by: Option<Serial>,
    /// The certificate this one renewed.
    #[serde(default)]
    pub renewed_from: Option<Serial>,
    /// Whether the private key was made by minica (false for `--csr`).
    #[serde(default)]
    pub key_generated: bool,
    /// The certificate, DER.
    #[serde(with = "hex_bytes")]
    pub cert_der: Vec<u8>,
}

impl CertRecord {
    /// The status as users see it at `now` (expiry applied to active ones).
    pub fn status_at(&self, now: OffsetDateTime) -> DisplayStatus {
        match self.status {
            Status::Revoked => DisplayStatus::Revoked,
            Status::Superseded => DisplayStatus::Superseded,
            Status::Active if self.not_after <= now => DisplayStatus::Expired,
            Status::Active => DisplayStatus::Active,
        }
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        minica_pki::pem::encode_pem("CERTIFICATE", &self.cert_der)
    }
}

/// Instants as Unix seconds.
pub(crate) mod unix_time {
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: serde::Serializer>(
        t: &OffsetDateTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.unix_timestamp())
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<OffsetDateTime, D::Error> {
        let secs = <i64 as serde::Deserialize>::deserialize(d)?;
        OffsetDateTime::from_unix_timestamp(secs).map_err(serde::de::Error::custom)
    }
}

/// Optional instants as Unix seconds or null.
pub(crate) mod unix_time_opt {
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: serde::Serializer>(
        t: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.unix_timestamp()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        <Option<i64> as serde::Deserialize>::deserialize(d)?
            .map(|secs| OffsetDateTime::from_unix_timestamp(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod reason_code {
    use crate::crl::RevocationReason;

    pub(super) fn serialize<S: serde::Serializer>(
        r: &RevocationReason,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u8(r.code())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<RevocationReason, D::Error> {
        let code = <u8 as serde::Deserialize>::deserialize(d)?;
        RevocationReason::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown CRL reason code {code}")))
    }
}

mod hex_bytes {
    pub(super) fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> CertRecord {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        CertRecord {
            serial: Serial::random(),
            name: name.to_string(),
            kind: CertKind::Leaf,
            profile: Some(Profile::Both),
            key_type: KeyType::EcdsaP256,
            sans: vec![San::Dns(name.to_string())],
            not_before: now,
            not_after: now + time::Duration::days(1),
            issuer_serial: Serial::random(),
            status: Status::Active,
            revocation: Some(Revocation {
                at: now,
                reason: RevocationReason::KeyCompromise,
            }),
            superseded_by: None,
            renewed_from: None,
            key_generated: true,
            cert_der: vec![0x30, 0x00],
        }
    }

    #[test]
    fn json_round_trip_and_status() {
        let rec = sample("a");
        let json = serde_json::to_string(&rec).unwrap();
        assert!(
            json.contains("\"kind\":\"leaf\"") && json.contains("\"cert_der\":\"3000\""),
            "{json}"
        );
        let back: CertRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
        assert_eq!(rec.status_at(rec.not_before), DisplayStatus::Active);
        assert_eq!(rec.status_at(rec.not_after), DisplayStatus::Expired);
    }
}
