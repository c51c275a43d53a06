//! Certificate revocation lists: build a CRL v2 signed by an issuing CA, and
//! read one back (for `minica inspect` and for [`crate::verify`]).
//!
//! # Design
//! The CRL is DER-encoded here rather than through rcgen's CRL builder so
//! that the CRL's issuer field is the *exact* bytes of the issuer
//! certificate's subject (relying parties such as rustls-webpki compare names
//! byte for byte) and so that 100,000 entries encode in a few milliseconds.
//! Only the signature is made by the caller's key (ring, through rcgen's
//! [`rcgen::SigningKey`]).
//!
//! Every CRL carries: version 2, the issuer's name, thisUpdate, nextUpdate,
//! the revoked entries (serial, revocation date, reason code unless
//! `unspecified`), an Authority Key Identifier (the issuer's Subject Key
//! Identifier) and a CRL Number.
//!
//! The reader ([`CrlInfo`]) keeps the entries sorted by serial, so a lookup
//! is a binary search (O(log n)).

use std::fmt;
use std::str::FromStr;

use rcgen::SigningKey;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// How long a CRL stays fresh when the caller does not say (`minica crl
/// --next-update`): a week, so that a relying party that refreshes daily
/// has six spare days when publishing fails.
pub const DEFAULT_NEXT_UPDATE: Duration = Duration::days(7);

/// The PEM label of a CRL.
pub const PEM_LABEL: &str = "X509 CRL";

/// Why a CRL could not be built or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The issuer certificate is not DER X.509.
    #[error("issuer certificate is not a valid X.509 certificate: {0}")]
    IssuerCertificate(String),
    /// The issuer is not a CA, or its key usage lacks cRLSign.
    #[error("issuer certificate may not sign CRLs: {0}")]
    IssuerNotCrlSigner(&'static str),
    /// The signing key is not the key of the issuer certificate.
    #[error("the signing key does not belong to the issuer certificate")]
    KeyMismatch,
    /// The key's algorithm has no CRL signature encoding here.
    #[error("unsupported signing key algorithm for CRLs")]
    UnsupportedAlgorithm,
    /// Signing failed.
    #[error("signing the CRL failed")]
    Sign(#[source] rcgen::Error),
    /// nextUpdate is not after thisUpdate.
    #[error("nextUpdate ({next}) must be after thisUpdate ({this})")]
    NextUpdateNotAfterThisUpdate {
        /// thisUpdate.
        this: OffsetDateTime,
        /// nextUpdate.
        next: OffsetDateTime,
    },
    /// An entry has an empty or zero serial number.
    #[error("revoked entry {index} has an empty or zero serial number")]
    BadSerial {
        /// Position of the entry.
        index: usize,
    },
    /// Two entries have the same serial number.
    #[error("serial {serial} is listed twice")]
    DuplicateSerial {
        /// The serial, hex.
        serial: String,
    },
    /// A date is outside what X.509 can encode (years 0000-9999).
    #[error("date {0} cannot be encoded in a CRL")]
    BadDate(OffsetDateTime),
    /// The bytes are not a CRL.
    #[error("not a valid CRL: {0}")]
    Malformed(String),
}

/// The reason code of a revocation (RFC 5280 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RevocationReason {
    /// No reason given (encoded by leaving the reason code out).
    Unspecified,
    /// The private key was compromised.
    KeyCompromise,
    /// A CA key was compromised.
    CaCompromise,
    /// The subject's affiliation changed.
    AffiliationChanged,
    /// The certificate was replaced.
    Superseded,
    /// The service no longer exists.
    CessationOfOperation,
    /// On hold (read only; minica never issues it).
    CertificateHold,
    /// Delta CRL removal (read only).
    RemoveFromCrl,
    /// Privilege withdrawn (read only).
    PrivilegeWithdrawn,
    /// Attribute authority compromised (read only).
    AaCompromise,
}

impl RevocationReason {
    /// The reasons `minica revoke --reason` accepts.
    pub const ISSUABLE: [RevocationReason; 6] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for a CRLReason code, `None` for an undefined code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }

    /// The RFC 5280 name (`keyCompromise`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "caCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--reason` is not one of the six reasons minica issues.
#[derive(Debug, thiserror::Error)]
#[error("unknown revocation reason `{0}` (expected one of: unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation)")]
pub struct UnknownReason(pub String);

impl FromStr for RevocationReason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ISSUABLE
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// One revoked certificate to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// The certificate's serial number, big-endian unsigned (leading zero
    /// bytes are ignored).
    pub serial: Vec<u8>,
    /// When the CA recorded the revocation.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What to put in a CRL.
#[derive(Debug, Clone)]
pub struct CrlParams {
    /// CRL Number: the caller's persisted, monotonic counter.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Revoked certificates (any order).
    pub entries: Vec<CrlEntry>,
}

impl CrlParams {
    /// A CRL numbered `number`, valid from `this_update` for
    /// [`DEFAULT_NEXT_UPDATE`], with no entries yet.
    pub fn new(number: u64, this_update: OffsetDateTime) -> Self {
        Self {
            number,
            this_update,
            next_update: this_update + DEFAULT_NEXT_UPDATE,
            entries: Vec::new(),
        }
    }
}

/// A signed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
}

impl Crl {
    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER bytes, owned.
    pub fn into_der(self) -> Vec<u8> {
        self.der
    }

    /// PEM (`-----BEGIN X509 CRL-----`).
    pub fn to_pem(&self) -> String {
        minica_pki::pem::encode_pem(PEM_LABEL, &self.der)
    }
}

/// Builds and signs a CRL v2 for the CA whose certificate is `issuer_der`
/// and whose private key is `key`.
///
/// Checks that `key` is that certificate's key and that the certificate may
/// sign CRLs (a CA; cRLSign when it has a key usage extension).
pub fn build_crl(
    issuer_der: &[u8],
    key: &impl SigningKey,
    params: &CrlParams,
) -> Result<Crl, CrlError> {
    build(issuer_der, key, params, true)
}

/// A CRL without the CRL Number extension (invalid): for tests of the
/// verifier only.
#[cfg(test)]
pub(crate) fn build_crl_without_number(
    issuer_der: &[u8],
    key: &impl SigningKey,
    params: &CrlParams,
) -> Result<Crl, CrlError> {
    build(issuer_der, key, params, false)
}

fn build(
    issuer_der: &[u8],
    key: &impl SigningKey,
    params: &CrlParams,
    with_number: bool,
) -> Result<Crl, CrlError> {
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| CrlError::IssuerCertificate(e.to_string()))?;
    if !issuer.is_ca() {
        return Err(CrlError::IssuerNotCrlSigner("it is not a CA"));
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.crl_sign() {
            return Err(CrlError::IssuerNotCrlSigner("its key usage lacks cRLSign"));
        }
    }
    if key.subject_public_key_info() != issuer.public_key().raw {
        return Err(CrlError::KeyMismatch);
    }
    if params.next_update <= params.this_update {
        return Err(CrlError::NextUpdateNotAfterThisUpdate {
            this: params.this_update,
            next: params.next_update,
        });
    }
    let alg = signature_algorithm_der(key)?;
    let key_id = match issuer
        .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
    {
        Ok(Some(ext)) => match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(kid) => kid.0.to_vec(),
            _ => sha1_key_id(&issuer),
        },
        _ => sha1_key_id(&issuer),
    };

    // revokedCertificates, sorted by serial so the output is deterministic.
    let mut entries: Vec<(&[u8], &CrlEntry)> = Vec::with_capacity(params.entries.len());
    for (index, entry) in params.entries.iter().enumerate() {
        let serial = strip_zeros(&entry.serial);
        if serial.is_empty() {
            return Err(CrlError::BadSerial { index });
        }
        entries.push((serial, entry));
    }
    entries.sort_unstable_by(|a, b| cmp_serial(a.0, b.0));
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CrlError::DuplicateSerial {
            serial: hex::encode(w[0].0),
        });
    }
    let mut revoked = Vec::with_capacity(entries.len() * 40);
    let mut one = Vec::with_capacity(64);
    for (serial, entry) in &entries {
        one.clear();
        write_unsigned_integer(&mut one, serial);
        write_time(&mut one, entry.revoked_at)?;
        if entry.reason != RevocationReason::Unspecified {
            // Extensions ::= SEQUENCE { Extension { reasonCode, ENUMERATED } }
            let reason = [0x0a, 0x01, entry.reason.code()];
            let ext = extension(OID_CRL_REASON, false, &reason);
            write_tlv(&mut one, 0x30, &ext);
        }
        write_tlv(&mut revoked, 0x30, &one);
    }

    let mut tbs = Vec::with_capacity(revoked.len() + 512);
    tbs.extend_from_slice(&[0x02, 0x01, 0x01]); // version v2
    tbs.extend_from_slice(&alg);
    tbs.extend_from_slice(issuer.subject().as_raw());
    write_time(&mut tbs, params.this_update)?;
    write_time(&mut tbs, params.next_update)?;
    if !revoked.is_empty() {
        write_tlv(&mut tbs, 0x30, &revoked);
    }
    let mut exts = Vec::new();
    let mut aki = Vec::new();
    write_tlv(&mut aki, 0x80, &key_id);
    let mut aki_seq = Vec::new();
    write_tlv(&mut aki_seq, 0x30, &aki);
    exts.extend_from_slice(&extension(OID_AKI, false, &aki_seq));
    let mut number = Vec::new();
    write_unsigned_integer(&mut number, strip_zeros(&params.number.to_be_bytes()));
    if params.number == 0 {
        number = vec![0x02, 0x01, 0x00];
    }
    if with_number {
        exts.extend_from_slice(&extension(OID_CRL_NUMBER, false, &number));
    }
    let mut exts_seq = Vec::new();
    write_tlv(&mut exts_seq, 0x30, &exts);
    write_tlv(&mut tbs, 0xa0, &exts_seq);
    let mut tbs_seq = Vec::with_capacity(tbs.len() + 8);
    write_tlv(&mut tbs_seq, 0x30, &tbs);
    drop(tbs);

    let signature = key.sign(&tbs_seq).map_err(CrlError::Sign)?;
    let mut body = tbs_seq;
    body.extend_from_slice(&alg);
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&signature);
    write_tlv(&mut body, 0x03, &bits);
    let mut der = Vec::with_capacity(body.len() + 8);
    write_tlv(&mut der, 0x30, &body);
    Ok(Crl { der })
}

const OID_CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];

/// The AlgorithmIdentifier (full DER) for signatures made by `key`.
fn signature_algorithm_der(key: &impl SigningKey) -> Result<Vec<u8>, CrlError> {
    let alg = key.algorithm();
    let der: &[u8] = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ]
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ]
    } else if alg == &rcgen::PKCS_ED25519 {
        &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ]
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05,
            0x00,
        ]
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05,
            0x00,
        ]
    } else {
        return Err(CrlError::UnsupportedAlgorithm);
    };
    Ok(der.to_vec())
}

/// RFC 5280 §4.2.1.2 method 1, for an issuer without a Subject Key Identifier.
fn sha1_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
    let key = &cert.public_key().subject_public_key.data;
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, key)
        .as_ref()
        .to_vec()
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(value.len() + 16);
    write_tlv(&mut inner, 0x06, oid);
    if critical {
        inner.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    write_tlv(&mut inner, 0x04, value);
    let mut out = Vec::with_capacity(inner.len() + 4);
    write_tlv(&mut out, 0x30, &inner);
    out
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_len(out, content.len());
    out.extend_from_slice(content);
}

/// A positive INTEGER from big-endian magnitude bytes (no leading zeros).
fn write_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    out.push(0x02);
    let pad = magnitude.first().is_some_and(|b| b & 0x80 != 0);
    write_len(out, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

/// UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 §5.1.2.4).
fn write_time(out: &mut Vec<u8>, t: OffsetDateTime) -> Result<(), CrlError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    let (tag, text) = if (1950..2050).contains(&year) {
        (
            0x17,
            format!(
                "{:02}{:02}{:02}{:02}{:02}{:02}Z",
                year % 100,
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    } else if (0..=9999).contains(&year) {
        (
            0x18,
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                year,
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    } else {
        return Err(CrlError::BadDate(t));
    };
    write_tlv(out, tag, text.as_bytes());
    Ok(())
}

/// Serial magnitude without leading zero bytes.
pub(crate) fn strip_zeros(serial: &[u8]) -> &[u8] {
    let skip = serial.iter().take_while(|b| **b == 0).count();
    &serial[skip..]
}

/// Orders serial magnitudes (no leading zeros) numerically.
fn cmp_serial(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One entry of a CRL that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedEntry {
    /// Serial magnitude, big-endian, no leading zeros.
    #[serde(serialize_with = "ser_hex")]
    pub serial: Vec<u8>,
    /// Revocation date.
    #[serde(serialize_with = "ser_rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// Reason code; `None` when the entry has none (i.e. unspecified).
    pub reason: Option<RevocationReason>,
}

impl RevokedEntry {
    /// Serial number as lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// Serializes a time as RFC 3339 text.
pub(crate) fn ser_rfc3339<S: serde::Serializer>(
    t: &OffsetDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

fn ser_opt_rfc3339<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser_rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn ser_opt_hex<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&hex::encode(v)),
        None => s.serialize_none(),
    }
}

/// A CRL as read: its fields and a sorted index of its entries.
///
/// Reading does not check the signature (that needs the issuer: see
/// [`crate::verify`]), but it does reject a structurally invalid CRL
/// (unknown critical extension, duplicate serials, unknown reason code).
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// Issuer name, RFC 4514 text.
    pub issuer: String,
    /// Issuer name, DER (for byte comparisons).
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// CRL Number (big-endian bytes), `None` when absent.
    #[serde(serialize_with = "ser_opt_hex")]
    pub number: Option<Vec<u8>>,
    /// Whether the CRL Number extension is marked critical (it must not be).
    #[serde(skip)]
    pub number_critical: bool,
    /// Authority Key Identifier's keyIdentifier, when present.
    #[serde(serialize_with = "ser_opt_hex")]
    pub authority_key_id: Option<Vec<u8>>,
    /// thisUpdate.
    #[serde(serialize_with = "ser_rfc3339")]
    pub this_update: OffsetDateTime,
    /// nextUpdate, `None` when absent.
    #[serde(serialize_with = "ser_opt_rfc3339")]
    pub next_update: Option<OffsetDateTime>,
    /// Entries sorted by serial.
    pub entries: Vec<RevokedEntry>,
}

impl CrlInfo {
    /// Reads a DER CRL.
    pub fn parse(der: &[u8]) -> Result<Self, CrlError> {
        let (rest, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CrlError::Malformed("trailing data after the CRL".into()));
        }
        Self::from_parsed(&crl)
    }

    /// Reads an already parsed CRL.
    pub(crate) fn from_parsed(crl: &CertificateRevocationList<'_>) -> Result<Self, CrlError> {
        let mut number = None;
        let mut number_critical = false;
        let mut authority_key_id = None;
        let mut seen = Vec::new();
        for ext in crl.extensions() {
            if seen.contains(&ext.oid) {
                return Err(CrlError::Malformed(format!(
                    "extension {} appears twice",
                    ext.oid
                )));
            }
            seen.push(ext.oid.clone());
            match ext.parsed_extension() {
                ParsedExtension::CRLNumber(n) => {
                    number = Some(n.to_bytes_be());
                    number_critical = ext.critical;
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::ParseError { error } => {
                    return Err(CrlError::Malformed(format!(
                        "extension {}: {error}",
                        ext.oid
                    )));
                }
                ParsedExtension::IssuingDistributionPoint(_) => {}
                _ if ext.critical => {
                    return Err(CrlError::Malformed(format!(
                        "unsupported critical extension {}",
                        ext.oid
                    )));
                }
                _ => {}
            }
        }
        let mut entries = Vec::with_capacity(crl.tbs_cert_list.revoked_certificates.len());
        for rc in crl.iter_revoked_certificates() {
            let raw = rc.raw_serial();
            if raw.first().is_some_and(|b| b & 0x80 != 0) {
                return Err(CrlError::Malformed(
                    "negative serial number in an entry".into(),
                ));
            }
            let mut reason = None;
            for ext in rc.extensions() {
                match ext.parsed_extension() {
                    ParsedExtension::ReasonCode(code) => {
                        reason = Some(RevocationReason::from_code(code.0).ok_or_else(|| {
                            CrlError::Malformed(format!("undefined reason code {}", code.0))
                        })?);
                    }
                    ParsedExtension::InvalidityDate(_) => {}
                    ParsedExtension::ParseError { error } => {
                        return Err(CrlError::Malformed(format!(
                            "entry extension {}: {error}",
                            ext.oid
                        )));
                    }
                    _ if ext.critical => {
                        return Err(CrlError::Malformed(format!(
                            "unsupported critical entry extension {}",
                            ext.oid
                        )));
                    }
                    _ => {}
                }
            }
            entries.push(RevokedEntry {
                serial: strip_zeros(raw).to_vec(),
                revoked_at: rc.revocation_date.to_datetime(),
                reason,
            });
        }
        entries.sort_unstable_by(|a, b| cmp_serial(&a.serial, &b.serial));
        if let Some(w) = entries.windows(2).find(|w| w[0].serial == w[1].serial) {
            return Err(CrlError::DuplicateSerial {
                serial: w[0].serial_hex(),
            });
        }
        Ok(Self {
            issuer: crl.issuer().to_string(),
            issuer_der: crl.issuer().as_raw().to_vec(),
            number,
            number_critical,
            authority_key_id,
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|t| t.to_datetime()),
            entries,
        })
    }

    /// The entry for `serial` (big-endian; leading zeros ignored), in
    /// O(log n).
    pub fn lookup(&self, serial: &[u8]) -> Option<&RevokedEntry> {
        let serial = strip_zeros(serial);
        self.entries
            .binary_search_by(|e| cmp_serial(&e.serial, serial))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// CRL Number as lowercase hex (`None` when absent).
    pub fn number_hex(&self) -> Option<String> {
        self.number.as_ref().map(hex::encode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

    fn ca(crl_sign: bool) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "test ca");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        if crl_sign {
            p.key_usages.push(KeyUsagePurpose::CrlSign);
        }
        let cert = p.self_signed(&key).unwrap();
        (cert.der().to_vec(), key)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_770_000_000).unwrap()
    }

    #[test]
    fn round_trip_with_entries() {
        let (der, key) = ca(true);
        let mut params = CrlParams::new(42, now());
        params.entries = vec![
            CrlEntry {
                serial: vec![0x00, 0x9f, 0x01],
                revoked_at: now(),
                reason: RevocationReason::KeyCompromise,
            },
            CrlEntry {
                serial: vec![0x05],
                revoked_at: now(),
                reason: RevocationReason::Unspecified,
            },
        ];
        let crl = build_crl(&der, &key, &params).unwrap();
        let info = CrlInfo::parse(crl.der()).unwrap();
        assert_eq!(info.number_hex().as_deref(), Some("2a"));
        assert_eq!(info.issuer, "CN=test ca");
        assert_eq!(info.this_update, now());
        assert_eq!(info.next_update, Some(now() + DEFAULT_NEXT_UPDATE));
        assert_eq!(info.entries.len(), 2);
        let e = info.lookup(&[0x9f, 0x01]).unwrap();
        assert_eq!(e.reason, Some(RevocationReason::KeyCompromise));
        assert_eq!(info.lookup(&[0, 0, 5]).unwrap().reason, None);
        assert!(info.lookup(&[6]).is_none());
        // issuer bytes are the certificate's subject bytes, AKI its SKI.
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(info.issuer_der, cert.subject().as_raw());
        assert!(info.authority_key_id.is_some());
        // signature verifies with the issuer key (x509-parser, ring)
        let (_, parsed) = CertificateRevocationList::from_der(crl.der()).unwrap();
        parsed.verify_signature(cert.public_key()).unwrap();
        // rustls-webpki accepts it too
        webpki::BorrowedCertRevocationList::from_der(crl.der()).unwrap();
        assert!(crl.to_pem().starts_with("-----BEGIN X509 CRL-----"));
    }

    #[test]
    fn empty_crl_has_no_revoked_list() {
        let (der, key) = ca(true);
        let crl = build_crl(&der, &key, &CrlParams::new(1, now())).unwrap();
        let info = CrlInfo::parse(crl.der()).unwrap();
        assert!(info.entries.is_empty());
        assert_eq!(info.number_hex().as_deref(), Some("01"));
    }

    #[test]
    fn refuses_bad_input() {
        let (der, key) = ca(false);
        assert!(matches!(
            build_crl(&der, &key, &CrlParams::new(1, now())),
            Err(CrlError::IssuerNotCrlSigner(_))
        ));
        let (der, _) = ca(true);
        let other = KeyPair::generate().unwrap();
        assert!(matches!(
            build_crl(&der, &other, &CrlParams::new(1, now())),
            Err(CrlError::KeyMismatch)
        ));
        let (der, key) = ca(true);
        let mut p = CrlParams::new(1, now());
        p.next_update = p.this_update;
        assert!(build_crl(&der, &key, &p).is_err());
        let mut p = CrlParams::new(1, now());
        p.entries = vec![
            CrlEntry {
                serial: vec![1],
                revoked_at: now(),
                reason: RevocationReason::Superseded,
            },
            CrlEntry {
                serial: vec![0, 1],
                revoked_at: now(),
                reason: RevocationReason::Superseded,
            },
        ];
        assert!(matches!(
            build_crl(&der, &key, &p),
            Err(CrlError::DuplicateSerial { .. })
        ));
        p.entries.truncate(1);
        p.entries[0].serial = vec![0];
        assert!(matches!(
            build_crl(&der, &key, &p),
            Err(CrlError::BadSerial { index: 0 })
        ));
        assert!(CrlInfo::parse(b"garbage").is_err());
        assert!(CrlInfo::parse(&der).is_err());
    }

    #[test]
    fn reasons_parse_and_print() {
        for r in RevocationReason::ISSUABLE {
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert!("certificateHold".parse::<RevocationReason>().is_err());
        assert_eq!(
            "KEYCOMPROMISE".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
    }

    #[test]
    fn large_crl_builds_and_looks_up() {
        let (der, key) = ca(true);
        let mut p = CrlParams::new(7, now());
        p.entries = (1u64..=5_000)
            .map(|i| CrlEntry {
                serial: (i * 7919).to_be_bytes().to_vec(),
                revoked_at: now(),
                reason: RevocationReason::Superseded,
            })
            .collect();
        let crl = build_crl(&der, &key, &p).unwrap();
        let info = CrlInfo::parse(crl.der()).unwrap();
        assert_eq!(info.entries.len(), 5_000);
        assert!(info.lookup(&(7919u64 * 4321).to_be_bytes()).is_some());
        assert!(info.lookup(&7920u64.to_be_bytes()).is_none());
    }
}
