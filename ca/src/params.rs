//! Certificate profiles: what goes into a root, an intermediate and a leaf.
//!
//! - root: CA:TRUE (critical) with pathLenConstraint 1, keyCertSign + cRLSign
//!   (critical), SKI;
//! - intermediate: CA:TRUE (critical) with pathLenConstraint 0, the same key
//!   usage, AKI and SKI;
//! - leaf: CA:FALSE (critical), digitalSignature (+ keyEncipherment for RSA
//!   keys), EKU serverAuth and/or clientAuth, SANs, AKI and SKI; notBefore
//!   backdated by [`BACKDATE`] for clocks that run a little behind.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use crate::error::{Error, ValidityError};
use crate::key::KeyType;
use crate::name::San;
use crate::record::Profile;
use crate::serial::Serial;

/// How far notBefore is set in the past, so that a peer whose clock is a
/// little behind accepts a certificate issued a moment ago.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// The validity window of a new certificate: from now minus [`BACKDATE`]
/// (whole seconds, as X.509 stores them) for `valid`.
pub(crate) fn window(
    now: OffsetDateTime,
    valid: Duration,
    arg: &'static str,
) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    if valid.is_zero() {
        return Err(Error::Validity(ValidityError::Zero { arg }));
    }
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let not_before = now - BACKDATE;
    let not_after = time::Duration::try_from(valid)
        .ok()
        .and_then(|d| now.checked_add(d))
        .filter(|t| t.year() <= 9999)
        .ok_or(Error::Validity(ValidityError::TooLong { arg }))?;
    Ok((not_before, not_after))
}

fn dn(org: &str, cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(
    cn: &str,
    serial: &Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    path_len: u8,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("minica", cn);
    p.serial_number = Some(serial.to_rcgen());
    p.not_before = not_before;
    p.not_after = not_after;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// A root: CA:TRUE pathLen 1, keyCertSign + cRLSign, SKI (no AKI: it is
/// self-signed).
pub(crate) fn root(
    cn: &str,
    serial: &Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    ca_params(cn, serial, not_before, not_after, 1)
}

/// An intermediate: CA:TRUE pathLen 0, keyCertSign + cRLSign, AKI + SKI.
pub(crate) fn intermediate(
    cn: &str,
    serial: &Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut p = ca_params(cn, serial, not_before, not_after, 0);
    p.use_authority_key_identifier_extension = true;
    p
}

/// What a leaf holds.
pub(crate) struct LeafSpec<'a> {
    pub(crate) common_name: &'a str,
    pub(crate) sans: &'a [San],
    pub(crate) profile: Profile,
    pub(crate) key_type: KeyType,
    pub(crate) serial: &'a Serial,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

/// A leaf: CA:FALSE, digitalSignature (+ keyEncipherment for RSA), EKU per
/// profile, SANs, AKI + SKI, subject CN = NAME.
pub(crate) fn leaf(spec: &LeafSpec<'_>) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.common_name);
    p.distinguished_name = dn;
    p.serial_number = Some(spec.serial.to_rcgen());
    p.not_before = spec.not_before;
    p.not_after = spec.not_after;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.key_type.is_rsa() {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = match spec.profile {
        Profile::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Profile::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Profile::Both => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    p.subject_alt_names = spec
        .sans
        .iter()
        .map(San::to_rcgen)
        .collect::<Result<_, _>>()?;
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_backdated_and_bounded() {
        let now = OffsetDateTime::now_utc();
        let (nb, na) = window(now, Duration::from_secs(3600), "--valid").unwrap();
        assert_eq!(na - nb, time::Duration::seconds(3660));
        assert_eq!(nb.nanosecond(), 0);
        assert!(window(now, Duration::ZERO, "--valid").is_err());
        let err = window(now, Duration::from_secs(u64::MAX / 4), "--valid").unwrap_err();
        assert!(err.to_string().contains("--valid"), "{err}");
    }
}
