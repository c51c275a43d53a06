//! Two cases rustls-webpki decides differently from RFC 5280, and where it
//! rejects a valid chain:
//!
//! - a leaf with rfc822Name SANs under a CA with rfc822Name name
//!   constraints: rustls-webpki does not implement e-mail constraints and
//!   rejects every such chain, even a permitted one;
//! - a self-issued intermediate (a key rollover): rustls-webpki counts it
//!   against pathLenConstraint, RFC 5280 §4.2.1.9 does not.
//!
//! When rustls-webpki rejects a chain in one of these settings, this module
//! searches the path again:
//!
//! - the leaf's link is still checked by rustls-webpki (signature, validity,
//!   EKU, basicConstraints, critical extensions), against its issuer taken
//!   as a trust anchor *without* its name constraints;
//! - every certificate above must still parse with rustls-webpki's strict
//!   parser, and every link above is checked here: signature (the same
//!   algorithms, RSA keys of 2048 bits or more), validity, EKU for the
//!   purpose, pathLenConstraint (self-issued intermediates not counted);
//! - every name constraint is enforced here, for dNSName, iPAddress and
//!   rfc822Name on every certificate below the constraining CA (self-issued
//!   intermediates excepted); a constraint of any other type keeps the
//!   rejection;
//! - then the same per-path checks as any other path (the hook).
//!
//! It can only turn a rejection into a success when the path it finds passes
//! all of the above; otherwise rustls-webpki's verdict stands.

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::EndEntityCert;
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;

use super::checks::{self, allowed_signature_alg};
use super::names;
use super::outcome::Reason;
use super::Purpose;

/// The most certificates tried as a next link, in all (bounds the search
/// however many untrusted certificates share a name).
const BUDGET: usize = 256;

/// What the search needs.
pub(super) struct Search<'a> {
    pub(super) ee: &'a EndEntityCert<'a>,
    pub(super) leaf: &'a X509Certificate<'a>,
    pub(super) inters: &'a [X509Certificate<'a>],
    pub(super) anchors: &'a [X509Certificate<'a>],
    pub(super) purpose: Purpose,
    pub(super) time: UnixTime,
    pub(super) at: OffsetDateTime,
}

/// Whether the chain may be one of the two cases: e-mail SANs on the leaf
/// and e-mail constraints on a known CA, or a self-issued intermediate among
/// the untrusted certificates. (rustls-webpki reports the error it ranks
/// highest among all the paths it tried, so its error alone does not tell.)
pub(super) fn applies(s: &Search<'_>) -> bool {
    let email = !names::rfc822_sans(s.leaf).is_empty()
        && s.inters.iter().chain(s.anchors).any(|c| {
            matches!(c.name_constraints(), Ok(Some(nc)) if names::has_email_constraint(nc.value))
        });
    email || s.inters.iter().any(checks::self_issued)
}

impl<'a> Search<'a> {
    /// A path (leaf first, anchor last) that passes every check and `hook`.
    pub(super) fn find(
        &self,
        hook: &dyn Fn(&[&X509Certificate<'_>]) -> Result<(), Reason>,
    ) -> Option<Vec<&'a X509Certificate<'a>>> {
        let mut path = vec![self.leaf];
        let mut budget = BUDGET;
        self.dfs(&mut path, hook, &mut budget).then_some(path)
    }

    fn dfs(
        &self,
        path: &mut Vec<&'a X509Certificate<'a>>,
        hook: &dyn Fn(&[&X509Certificate<'_>]) -> Result<(), Reason>,
        budget: &mut usize,
    ) -> bool {
        let Some(head) = path.last().copied() else {
            return false;
        };
        for anchor in self.anchors {
            if anchor.subject().as_raw() != head.issuer().as_raw() || *budget == 0 {
                continue;
            }
            *budget -= 1;
            path.push(anchor);
            if self.check(path) && hook(path).is_ok() {
                return true;
            }
            path.pop();
        }
        // leaf + at most 6 intermediates, like rustls-webpki
        if path.len() > 6 {
            return false;
        }
        for c in self.inters {
            if c.subject().as_raw() != head.issuer().as_raw()
                || path.iter().any(|p| p.as_raw() == c.as_raw())
            {
                continue;
            }
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            path.push(c);
            if self.dfs(path, hook, budget) {
                return true;
            }
            path.pop();
        }
        false
    }

    /// The checks of a complete candidate path.
    fn check(&self, path: &[&X509Certificate<'_>]) -> bool {
        let Some(issuer) = path.get(1) else {
            return false;
        };
        // The leaf's link, by rustls-webpki, its issuer as an unconstrained anchor.
        let issuer_der = CertificateDer::from(issuer.as_raw());
        let Ok(mut anchor) = webpki::anchor_from_trusted_cert(&issuer_der) else {
            return false;
        };
        anchor.name_constraints = None;
        if self
            .ee
            .verify_for_usage(
                super::path::SIG_ALGS,
                &[anchor],
                &[],
                self.time,
                super::path::PurposeEku(self.purpose),
                None,
                None,
            )
            .is_err()
        {
            return false;
        }
        // The links above.
        let last = path.len() - 1;
        for i in 1..last {
            let (cert, parent) = (path[i], path[i + 1]);
            let der = CertificateDer::from(cert.as_raw());
            if EndEntityCert::try_from(&der).is_err()
                || !signed_by(cert, parent)
                || checks::check_validity(cert, self.at).is_err()
            {
                return false;
            }
            match cert.extended_key_usage() {
                Ok(Some(eku)) => {
                    let ok = match self.purpose {
                        Purpose::Server => eku.value.server_auth,
                        Purpose::Client => eku.value.client_auth,
                        Purpose::Any => true,
                    };
                    if !ok {
                        return false;
                    }
                }
                Ok(None) => {}
                Err(_) => return false,
            }
            match cert.basic_constraints() {
                Ok(Some(bc)) if bc.value.ca => {
                    // non-self-issued intermediates below this one
                    let below = path[1..i]
                        .iter()
                        .filter(|c| !checks::self_issued(c))
                        .count();
                    if bc
                        .value
                        .path_len_constraint
                        .is_some_and(|n| usize::try_from(n).is_ok_and(|n| below > n))
                    {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        // Every name constraint, on every certificate below it.
        for j in 1..=last {
            let nc = match path[j].name_constraints() {
                Ok(Some(nc)) => nc.value,
                Ok(None) => continue,
                Err(_) => return false,
            };
            if !names::constraints_supported(nc) {
                return false;
            }
            for (i, cert) in path[..j].iter().enumerate() {
                if i > 0 && checks::self_issued(cert) {
                    continue;
                }
                let sans = match cert.subject_alternative_name() {
                    Ok(Some(san)) => san.value.general_names.clone(),
                    Ok(None) => Vec::new(),
                    Err(_) => return false,
                };
                let dn_emails = names::subject_emails(cert);
                let mut emails = names::rfc822_sans(cert);
                emails.extend(dn_emails.iter().map(String::as_str));
                if names::check_constraints(nc, &sans, &emails).is_err() {
                    return false;
                }
            }
        }
        true
    }
}

/// `cert`'s signature verifies with `issuer`'s key, with an algorithm we
/// accept and an RSA key of at least 2048 bits.
fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    if cert.signature_algorithm.algorithm != cert.tbs_certificate.signature.algorithm
        || !allowed_signature_alg(&cert.signature_algorithm.algorithm.to_id_string())
    {
        return false;
    }
    if let Ok(PublicKey::RSA(rsa)) = issuer.public_key().parsed() {
        if rsa.key_size() < 2048 {
            return false;
        }
    }
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}
