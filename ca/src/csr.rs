//! Signing external PKCS#10 certificate requests.
//!
//! A CSR contributes only its public key and the SANs it asks for. Its
//! signature must verify with its own key. Everything else it requests
//! (subject, key usage, EKU, any extension) is ignored: minica decides the
//! profile. A CSR asking for a CA certificate is refused outright, so that a
//! mistake is visible instead of silently issuing a leaf.

use std::path::Path;

use rustls_pki_types::pem::SectionKind;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::error::{CsrError, Error};
use crate::key::KeyType;
use crate::name::San;

/// A checked CSR: its public key and requested SANs.
#[derive(Debug, Clone)]
pub struct Csr {
    key_type: KeyType,
    public_key: rcgen::SubjectPublicKeyInfo,
    public_key_der: Vec<u8>,
    sans: Vec<San>,
}

impl Csr {
    /// Reads and checks a CSR file (PEM or DER).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = minica_pki::pem::read_file(path)?;
        Self::parse(path, &bytes)
    }

    /// Parses and checks a CSR read from `path` (named in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let fail = |reason| Error::Csr {
            path: path.to_path_buf(),
            reason,
        };
        let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            minica_pki::pem::pem_sections(path, bytes)?
                .into_iter()
                .find(|(kind, _)| *kind == SectionKind::Csr)
                .map(|(_, mut der)| std::mem::take(&mut *der))
                .ok_or_else(|| fail(CsrError::NotACsr))?
        } else {
            bytes.to_vec()
        };
        let (_, csr) =
            X509CertificationRequest::from_der(&der).map_err(|_| fail(CsrError::NotACsr))?;
        csr.verify_signature()
            .map_err(|_| fail(CsrError::BadSignature))?;
        let info = &csr.certification_request_info;
        let key_type =
            KeyType::from_spki(&info.subject_pki).ok_or_else(|| fail(CsrError::UnsupportedKey))?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
            .map_err(|_| fail(CsrError::UnsupportedKey))?;
        let mut sans = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            match ext {
                ParsedExtension::BasicConstraints(bc) if bc.ca => {
                    return Err(fail(CsrError::AsksForCa));
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        sans.push(
                            csr_san(name)
                                .ok_or_else(|| fail(CsrError::BadSan(name.to_string())))?,
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(Csr {
            key_type,
            public_key,
            public_key_der: info.subject_pki.raw.to_vec(),
            sans,
        })
    }

    /// The requested SANs (DNS, IP and URI only).
    pub fn sans(&self) -> &[San] {
        &self.sans
    }

    /// The key type of the CSR's public key.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    pub(crate) fn public_key(&self) -> &rcgen::SubjectPublicKeyInfo {
        &self.public_key
    }

    /// A "CSR" made of a public key we already certified (renewal that
    /// keeps the key): no SANs of its own.
    pub(crate) fn from_public_key(key_type: KeyType, spki_der: &[u8]) -> Option<Self> {
        Some(Csr {
            key_type,
            public_key: rcgen::SubjectPublicKeyInfo::from_der(spki_der).ok()?,
            public_key_der: spki_der.to_vec(),
            sans: Vec::new(),
        })
    }
}

fn csr_san(name: &GeneralName<'_>) -> Option<San> {
    match name {
        GeneralName::DNSName(d) => San::dns(d).ok(),
        GeneralName::URI(u) => San::uri(u).ok(),
        GeneralName::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b).ok().map(|a| San::Ip(a.into())),
            16 => <[u8; 16]>::try_from(*b).ok().map(|a| San::Ip(a.into())),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn make_csr(ca: bool) -> String {
        let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn takes_key_and_sans() {
        let csr = Csr::parse(Path::new("x.csr"), make_csr(false).as_bytes()).unwrap();
        assert_eq!(csr.key_type(), KeyType::EcdsaP256);
        assert_eq!(csr.sans(), &[San::Dns("a.example".into())]);
    }

    #[test]
    fn refuses_ca_requests_bad_signatures_and_garbage() {
        let err = Csr::parse(Path::new("ca.csr"), make_csr(true).as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Csr {
                    reason: CsrError::AsksForCa,
                    ..
                }
            ),
            "{err}"
        );

        let pem = make_csr(false);
        let mut der = minica_pki::pem::pem_sections(Path::new("x"), pem.as_bytes())
            .unwrap()
            .remove(0)
            .1;
        let last = der.len() - 1;
        der[last] ^= 0x01; // inside the signature
        let err = Csr::parse(Path::new("bad.csr"), &der).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Csr {
                    reason: CsrError::BadSignature,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("bad.csr"));

        let err = Csr::parse(Path::new("junk"), b"hello").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Csr {
                    reason: CsrError::NotACsr,
                    ..
                }
            ),
            "{err}"
        );
    }
}
