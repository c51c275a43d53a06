//! Reading certificates, CSRs, CRLs and key files for `minica inspect`.
//!
//! Never returns private key material: for a key file only its type.

use std::fmt::{self, Write as _};
use std::path::Path;

use rustls_pki_types::pem::SectionKind;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::Error;
use crate::key::PrivateKey;

/// What a file holds.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inspected {
    /// One or more certificates.
    Certificates {
        /// Each certificate, in file order.
        certificates: Vec<CertInfo>,
    },
    /// A PKCS#10 request.
    Csr(CsrInfo),
    /// One or more CRLs (a `crl.pem` holds one per CA level).
    Crls {
        /// Each CRL, in file order.
        crls: Vec<CrlInfo>,
    },
    /// A private key (its type only).
    Key(KeyInfo),
}

/// Subject alternative names by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sans {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ip: Vec<String>,
    /// URIs (SPIFFE IDs among them).
    pub uri: Vec<String>,
    /// rfc822 (email) names.
    pub email: Vec<String>,
    /// Any other kind, as text.
    pub other: Vec<String>,
}

/// A public key's type and size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa`, or the algorithm OID.
    pub algorithm: String,
    /// Size in bits, when known.
    pub bits: Option<usize>,
}

/// One certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertInfo {
    /// Subject, RFC 4514 style.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// SANs.
    pub sans: Sans,
    /// Subject key.
    pub key: KeyInfo,
    /// basicConstraints cA.
    pub ca: bool,
    /// pathLenConstraint.
    pub path_len: Option<u32>,
    /// Key usage names (openssl spelling).
    pub key_usage: Vec<String>,
    /// Extended key usage names.
    pub extended_key_usage: Vec<String>,
    /// Subject key identifier, hex.
    pub subject_key_id: Option<String>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// SHA-256 of the DER, uppercase hex with colons (as openssl prints it).
    pub sha256_fingerprint: String,
}

/// A certificate request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CsrInfo {
    /// Requested subject.
    pub subject: String,
    /// Public key.
    pub key: KeyInfo,
    /// Requested SANs.
    pub sans: Sans,
    /// Whether it asks for CA:TRUE.
    pub requests_ca: bool,
    /// Whether its self-signature verifies.
    pub signature_valid: bool,
}

/// One revoked entry of a CRL.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrlEntry {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Revocation date, RFC 3339.
    pub revoked_at: String,
    /// Reason code, when present.
    pub reason: Option<u8>,
    /// Reason name (`keyCompromise`), when the code is present and defined.
    pub reason_name: Option<&'static str>,
}

/// A CRL.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrlInfo {
    /// Issuer.
    pub issuer: String,
    /// CRL number, decimal.
    pub number: Option<String>,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339.
    pub next_update: Option<String>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// Revoked certificates.
    pub entries: Vec<CrlEntry>,
}

fn rfc3339(t: ASN1Time) -> String {
    t.to_datetime()
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
    if let Some(t) = crate::key::KeyType::from_spki(spki) {
        let algorithm = if t.is_rsa() { "rsa" } else { t.as_str() };
        return KeyInfo {
            algorithm: algorithm.to_string(),
            bits: Some(t.bits()),
        };
    }
    let bits = spki.parsed().ok().map(|k| k.key_size()).filter(|b| *b > 0);
    let algorithm =
        if spki.algorithm.algorithm == x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            "rsa".to_string()
        } else {
            spki.algorithm.algorithm.to_id_string()
        };
    KeyInfo { algorithm, bits }
}

fn add_names(sans: &mut Sans, names: &[GeneralName<'_>]) {
    for name in names {
        match name {
            GeneralName::DNSName(d) => sans.dns.push(d.to_string()),
            GeneralName::URI(u) => sans.uri.push(u.to_string()),
            GeneralName::RFC822Name(e) => sans.email.push(e.to_string()),
            GeneralName::IPAddress(b) => sans.ip.push(match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .map(|a| std::net::IpAddr::from(a).to_string())
                    .unwrap_or_default(),
                16 => <[u8; 16]>::try_from(*b)
                    .map(|a| std::net::IpAddr::from(a).to_string())
                    .unwrap_or_default(),
                _ => hex::encode(b),
            }),
            other => sans.other.push(other.to_string()),
        }
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn cert_info(der: &[u8], x: &X509Certificate<'_>) -> CertInfo {
    let mut info = CertInfo {
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        serial: crate::serial::Serial::from_bytes(x.raw_serial()).to_hex(),
        not_before: rfc3339(x.validity().not_before),
        not_after: rfc3339(x.validity().not_after),
        sans: Sans::default(),
        key: key_info(x.public_key()),
        ca: false,
        path_len: None,
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
    };
    apply_extensions(&mut info, x.extensions());
    info
}

fn apply_extensions(info: &mut CertInfo, exts: &[X509Extension<'_>]) {
    for ext in exts {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                add_names(&mut info.sans, &san.general_names)
            }
            ParsedExtension::BasicConstraints(bc) => {
                info.ca = bc.ca;
                info.path_len = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => {
                let names = [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                    (ku.encipher_only(), "encipherOnly"),
                    (ku.decipher_only(), "decipherOnly"),
                ];
                info.key_usage = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let names = [
                    (eku.any, "anyExtendedKeyUsage"),
                    (eku.server_auth, "serverAuth"),
                    (eku.client_auth, "clientAuth"),
                    (eku.code_signing, "codeSigning"),
                    (eku.email_protection, "emailProtection"),
                    (eku.time_stamping, "timeStamping"),
                    (eku.ocsp_signing, "OCSPSigning"),
                ];
                info.extended_key_usage = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
                info.extended_key_usage
                    .extend(eku.other.iter().map(|o| o.to_id_string()));
            }
            ParsedExtension::SubjectKeyIdentifier(id) => {
                info.subject_key_id = Some(hex::encode(id.0))
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                info.authority_key_id = aki.key_identifier.as_ref().map(|id| hex::encode(id.0));
            }
            _ => {}
        }
    }
}

fn csr_info(csr: &X509CertificationRequest<'_>) -> CsrInfo {
    let info = &csr.certification_request_info;
    let mut out = CsrInfo {
        subject: info.subject.to_string(),
        key: key_info(&info.subject_pki),
        sans: Sans::default(),
        requests_ca: false,
        signature_valid: csr.verify_signature().is_ok(),
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                add_names(&mut out.sans, &san.general_names)
            }
            ParsedExtension::BasicConstraints(bc) => out.requests_ca = bc.ca,
            _ => {}
        }
    }
    out
}

fn crl_info(crl: &CertificateRevocationList<'_>) -> CrlInfo {
    let authority_key_id = crl
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| hex::encode(id.0))
            }
            _ => None,
        });
    CrlInfo {
        issuer: crl.issuer().to_string(),
        number: crl.crl_number().map(|n| n.to_string()),
        this_update: rfc3339(crl.last_update()),
        next_update: crl.next_update().map(rfc3339),
        authority_key_id,
        entries: crl
            .iter_revoked_certificates()
            .map(|r| CrlEntry {
                serial: crate::serial::Serial::from_bytes(r.raw_serial()).to_hex(),
                revoked_at: rfc3339(r.revocation_date),
                reason: r.reason_code().map(|(_, c)| c.0),
                reason_name: r
                    .reason_code()
                    .and_then(|(_, c)| crate::crl::RevocationReason::from_code(c.0))
                    .map(crate::crl::RevocationReason::name),
            })
            .collect(),
    }
}

fn key_file_info(path: &Path, bytes: &[u8]) -> Result<KeyInfo, Error> {
    Ok(match PrivateKey::from_file_bytes(path, bytes) {
        Ok(k) => KeyInfo {
            algorithm: if k.key_type().is_rsa() {
                "rsa".into()
            } else {
                k.key_type().as_str().into()
            },
            bits: Some(k.key_type().bits()),
        },
        Err(_) => {
            // Parses as a key (checked by the caller) but not one we use.
            let der = minica_pki::pem::parse_private_key(path, bytes)?;
            let algorithm = match &*der {
                rustls_pki_types::PrivateKeyDer::Pkcs1(_) => "rsa (PKCS#1)",
                rustls_pki_types::PrivateKeyDer::Sec1(_) => "ec (SEC1)",
                _ => "unknown (PKCS#8)",
            };
            KeyInfo {
                algorithm: algorithm.into(),
                bits: None,
            }
        }
    })
}

/// Reads and describes a file.
pub fn inspect_file(path: &Path) -> Result<Inspected, Error> {
    // It may be a private key: read into a buffer wiped when dropped.
    let bytes = minica_pki::pem::read_secret_file(path)?;
    inspect_bytes(path, &bytes)
}

/// Describes `bytes` read from `path` (named in errors).
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Inspected, Error> {
    let unrecognized = || Error::Unrecognized {
        path: path.to_path_buf(),
        reason: "holds no certificate, CSR, CRL or private key (PEM or DER)",
    };
    let bad = |what: &'static str| Error::Unrecognized {
        path: path.to_path_buf(),
        reason: what,
    };
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let sections = minica_pki::pem::pem_sections(path, bytes)?;
        let of = |kind: SectionKind| {
            sections
                .iter()
                .filter(move |(k, _)| *k == kind)
                .map(|(_, d)| d.as_slice())
        };
        let certs: Vec<_> = of(SectionKind::Certificate).collect();
        if !certs.is_empty() {
            let certificates = certs
                .into_iter()
                .map(|der| {
                    X509Certificate::from_der(der)
                        .map(|(_, x)| cert_info(der, &x))
                        .map_err(|_| bad("holds a malformed certificate"))
                })
                .collect::<Result<_, _>>()?;
            return Ok(Inspected::Certificates { certificates });
        }
        if let Some(der) = of(SectionKind::Csr).next() {
            let (_, csr) = X509CertificationRequest::from_der(der)
                .map_err(|_| bad("holds a malformed CSR"))?;
            return Ok(Inspected::Csr(csr_info(&csr)));
        }
        let crls: Vec<_> = of(SectionKind::Crl).collect();
        if !crls.is_empty() {
            let crls = crls
                .into_iter()
                .map(|der| {
                    CertificateRevocationList::from_der(der)
                        .map(|(_, crl)| crl_info(&crl))
                        .map_err(|_| bad("holds a malformed CRL"))
                })
                .collect::<Result<_, _>>()?;
            return Ok(Inspected::Crls { crls });
        }
        if minica_pki::pem::parse_private_key(path, bytes).is_ok() {
            return Ok(Inspected::Key(key_file_info(path, bytes)?));
        }
        return Err(unrecognized());
    }
    if let Ok((_, x)) = X509Certificate::from_der(bytes) {
        return Ok(Inspected::Certificates {
            certificates: vec![cert_info(bytes, &x)],
        });
    }
    if let Ok((_, csr)) = X509CertificationRequest::from_der(bytes) {
        return Ok(Inspected::Csr(csr_info(&csr)));
    }
    if let Ok((_, crl)) = CertificateRevocationList::from_der(bytes) {
        return Ok(Inspected::Crls {
            crls: vec![crl_info(&crl)],
        });
    }
    if minica_pki::pem::parse_private_key(path, bytes).is_ok() {
        return Ok(Inspected::Key(key_file_info(path, bytes)?));
    }
    Err(unrecognized())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

impl fmt::Display for Sans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (label, items) in [
            ("DNS", &self.dns),
            ("IP", &self.ip),
            ("URI", &self.uri),
            ("email", &self.email),
            ("other", &self.other),
        ] {
            parts.extend(items.iter().map(|v| format!("{label}:{v}")));
        }
        f.write_str(&list(&parts))
    }
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bits {
            Some(bits) => write!(f, "{} ({bits} bits)", self.algorithm),
            None => f.write_str(&self.algorithm),
        }
    }
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(s, "subject:             {}", self.subject);
        let _ = writeln!(s, "issuer:              {}", self.issuer);
        let _ = writeln!(s, "serial:              {}", self.serial);
        let _ = writeln!(s, "not before:          {}", self.not_before);
        let _ = writeln!(s, "not after:           {}", self.not_after);
        let _ = writeln!(s, "SANs:                {}", self.sans);
        let _ = writeln!(s, "key:                 {}", self.key);
        let ca = match (self.ca, self.path_len) {
            (true, Some(n)) => format!("yes (path length {n})"),
            (true, None) => "yes (no path length limit)".to_string(),
            (false, _) => "no".to_string(),
        };
        let _ = writeln!(s, "CA:                  {ca}");
        let _ = writeln!(s, "key usage:           {}", list(&self.key_usage));
        let _ = writeln!(s, "extended key usage:  {}", list(&self.extended_key_usage));
        let _ = writeln!(
            s,
            "subject key id:      {}",
            self.subject_key_id.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            s,
            "authority key id:    {}",
            self.authority_key_id.as_deref().unwrap_or("-")
        );
        let _ = write!(s, "SHA-256 fingerprint: {}", self.sha256_fingerprint);
        f.write_str(&s)
    }
}

impl fmt::Display for CrlInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "issuer:              {}", self.issuer)?;
        writeln!(
            f,
            "CRL number:          {}",
            self.number.as_deref().unwrap_or("-")
        )?;
        writeln!(f, "this update:         {}", self.this_update)?;
        writeln!(
            f,
            "next update:         {}",
            self.next_update.as_deref().unwrap_or("-")
        )?;
        writeln!(
            f,
            "authority key id:    {}",
            self.authority_key_id.as_deref().unwrap_or("-")
        )?;
        writeln!(f, "revoked:             {}", self.entries.len())?;
        for e in &self.entries {
            let reason = match (e.reason, e.reason_name) {
                (_, Some(name)) => format!(" {name}"),
                (Some(code), None) => format!(" reason {code}"),
                _ => String::new(),
            };
            writeln!(f, "  {} at {}{reason}", e.serial, e.revoked_at)?;
        }
        Ok(())
    }
}

impl fmt::Display for Inspected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inspected::Certificates { certificates } => {
                for (i, c) in certificates.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    writeln!(f, "certificate {} of {}", i + 1, certificates.len())?;
                    writeln!(f, "{c}")?;
                }
                Ok(())
            }
            Inspected::Csr(c) => {
                writeln!(f, "certificate request")?;
                writeln!(f, "subject:             {}", c.subject)?;
                writeln!(f, "SANs:                {}", c.sans)?;
                writeln!(f, "key:                 {}", c.key)?;
                writeln!(
                    f,
                    "requests CA:         {}",
                    if c.requests_ca { "yes" } else { "no" }
                )?;
                writeln!(
                    f,
                    "signature:           {}",
                    if c.signature_valid {
                        "valid"
                    } else {
                        "INVALID"
                    }
                )
            }
            Inspected::Crls { crls } => {
                for (i, c) in crls.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    writeln!(f, "certificate revocation list {} of {}", i + 1, crls.len())?;
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Inspected::Key(k) => writeln!(f, "private key: {k} (key material not shown)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, InitOptions};
    use crate::home::CaHome;
    use crate::issue::LeafRequest;

    #[test]
    fn describes_a_leaf_chain_and_a_key_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let leaf = ca
            .issue(&LeafRequest::new("svc-a".parse().unwrap()))
            .unwrap();
        let got = inspect_bytes(Path::new("chain.pem"), leaf.chain_pem().as_bytes()).unwrap();
        let Inspected::Certificates { certificates } = &got else {
            panic!("{got:?}")
        };
        assert_eq!(certificates.len(), 2);
        let c = &certificates[0];
        assert_eq!(c.serial, leaf.record.serial.to_hex());
        assert_eq!(c.sans.dns, vec!["svc-a"]);
        assert_eq!(c.sans.uri, vec!["spiffe://minica.internal/svc-a"]);
        assert_eq!(c.key.algorithm, "ecdsa-p256");
        assert_eq!(c.extended_key_usage, vec!["serverAuth", "clientAuth"]);
        assert!(!c.ca && certificates[1].ca && certificates[1].path_len == Some(0));
        assert_eq!(c.authority_key_id, certificates[1].subject_key_id);
        assert_eq!(c.sha256_fingerprint.len(), 32 * 3 - 1);
        let text = got.to_string();
        assert!(
            text.contains("CA:                  yes (path length 0)"),
            "{text}"
        );

        let key_pem = leaf.key().unwrap().to_pkcs8_pem();
        let got = inspect_bytes(Path::new("key.pem"), key_pem.as_bytes()).unwrap();
        let text = got.to_string();
        assert!(
            text.contains("ecdsa-p256") && !text.contains("BEGIN"),
            "{text}"
        );
        let json = serde_json::to_string(&got).unwrap();
        assert!(!json.contains(&key_pem[30..60]), "{json}");

        let err = inspect_bytes(Path::new("x.txt"), b"hello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.txt"), "{err}");
    }

    #[test]
    fn describes_a_crl_signed_with_the_ca_issuer_and_a_csr() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let leaf = ca
            .issue(&LeafRequest::new("gone".parse().unwrap()))
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(1),
            crl_number: rcgen::SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(leaf.record.serial.as_bytes()),
                revocation_time: now,
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(ca.intermediate().issuer()).unwrap();
        let got = inspect_bytes(Path::new("crl.pem"), crl.pem().unwrap().as_bytes()).unwrap();
        let Inspected::Crls { crls } = &got else {
            panic!("{got:?}")
        };
        let info = &crls[0];
        assert_eq!(info.number.as_deref(), Some("7"));
        assert_eq!(info.entries.len(), 1);
        assert_eq!(info.entries[0].serial, leaf.record.serial.to_hex());
        assert_eq!(info.entries[0].reason, Some(1));
        assert_eq!(info.entries[0].reason_name, Some("keyCompromise"));
        assert!(got.to_string().contains("CRL number:          7"));

        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["csr.example".to_string()]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let csr = p.serialize_request(&key).unwrap();
        let got = inspect_bytes(Path::new("r.der"), csr.der()).unwrap();
        let Inspected::Csr(info) = &got else {
            panic!("{got:?}")
        };
        assert!(info.requests_ca && info.signature_valid);
        assert_eq!(info.sans.dns, vec!["csr.example"]);
    }
}
