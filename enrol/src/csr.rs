//! A private key made (or reused) on this machine and a PKCS#10 CSR for it.
//! The key never leaves the machine: only the CSR is sent to the CA.

use std::fmt;
use std::net::IpAddr;

use minica_pki::keygen::{self, KeyType};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, SanType};
use zeroize::Zeroizing;

use crate::error::Error;

/// A subject alternative name to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum San {
    /// A dNSName.
    Dns(String),
    /// An iPAddress.
    Ip(IpAddr),
    /// A uniformResourceIdentifier (e.g. a SPIFFE ID).
    Uri(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(a) => write!(f, "IP:{a}"),
            San::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

/// A private key and the CSR that asks for a certificate on it.
/// Its `Debug` never shows key material, which is wiped when it drops.
pub struct KeyAndCsr {
    key_type: KeyType,
    pkcs8: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
    csr_pem: String,
}

impl fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("key_type", &self.key_type)
            .field("key", &"[elided]")
            .finish()
    }
}

impl KeyAndCsr {
    /// Generates a key of `key_type` and a CSR with subject CN = `name` and
    /// the given SANs (none is fine: the CA binds the names to the token or
    /// to the certificate being renewed). RSA generation takes long: call
    /// this off any async runtime.
    pub fn generate(key_type: KeyType, name: &str, sans: &[San]) -> Result<Self, Error> {
        let key = keygen::generate(key_type)?;
        let pair = match key.pair {
            Some(pair) => pair,
            None => key.key_pair()?,
        };
        Self::from_pair(key_type, &pair, name, sans)
    }

    /// A CSR for an existing PKCS#8 key (`--reuse-key`).
    pub fn reuse(key_type: KeyType, pkcs8: &[u8], name: &str, sans: &[San]) -> Result<Self, Error> {
        let pair = keygen::load_pkcs8(key_type, pkcs8, "cannot load the private key")?;
        Self::from_pair(key_type, &pair, name, sans)
    }

    fn from_pair(
        key_type: KeyType,
        pair: &KeyPair,
        name: &str,
        sans: &[San],
    ) -> Result<Self, Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s {
                San::Dns(d) => d.clone().try_into().map(SanType::DnsName),
                San::Ip(a) => Ok(SanType::IpAddress(*a)),
                San::Uri(u) => u.clone().try_into().map(SanType::URI),
            })
            .collect::<Result<_, _>>()
            .map_err(Error::Csr)?;
        let csr = params.serialize_request(pair).map_err(Error::Csr)?;
        let csr_pem = csr.pem().map_err(Error::Csr)?;
        Ok(KeyAndCsr {
            key_type,
            pkcs8: Zeroizing::new(pair.serialized_der().to_vec()),
            spki: pair.subject_public_key_info(),
            csr_pem,
        })
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The CSR, PEM.
    pub fn csr_pem(&self) -> &str {
        &self.csr_pem
    }

    /// The DER SubjectPublicKeyInfo of the key: the certificate the CA
    /// returns must carry exactly this.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The private key, PKCS#8 PEM. This is the secret: write it with mode
    /// 0600. Wiped when dropped.
    pub fn key_pem(&self) -> Zeroizing<String> {
        minica_pki::pem::encode_pkcs8_pem(&self.pkcs8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};

    // A tiny PEM decoder for the tests (the crate encodes with minica-pki).
    fn pem_der(text: &str) -> Vec<u8> {
        let sections =
            minica_pki::pem::pem_sections(std::path::Path::new("csr.pem"), text.as_bytes())
                .unwrap();
        sections.into_iter().next().unwrap().1.to_vec()
    }

    #[test]
    fn csrs_of_every_key_type_parse_and_verify() {
        let sans = [
            San::Dns("svc.example".into()),
            San::Ip("10.0.0.7".parse().unwrap()),
            San::Uri("spiffe://minica.internal/svc".into()),
        ];
        for k in KeyType::ALL {
            let kc = KeyAndCsr::generate(k, "svc", &sans).unwrap();
            let der = pem_der(kc.csr_pem());
            let (rest, csr) = X509CertificationRequest::from_der(&der).unwrap();
            assert!(rest.is_empty());
            csr.verify_signature()
                .unwrap_or_else(|e| panic!("{k}: {e:?}"));
            let info = &csr.certification_request_info;
            assert_eq!(info.subject.to_string(), "CN=svc");
            assert_eq!(info.subject_pki.raw, kc.spki_der(), "{k}");
            assert_eq!(KeyType::from_spki_der(kc.spki_der()), Some(k));
            let mut names = Vec::new();
            for ext in csr.requested_extensions().unwrap() {
                if let ParsedExtension::SubjectAlternativeName(san) = ext {
                    for n in &san.general_names {
                        names.push(match n {
                            GeneralName::DNSName(d) => format!("DNS:{d}"),
                            GeneralName::IPAddress(a) => format!("IP:{a:?}"),
                            GeneralName::URI(u) => format!("URI:{u}"),
                            other => format!("{other:?}"),
                        });
                    }
                }
            }
            assert_eq!(
                names,
                [
                    "DNS:svc.example",
                    "IP:[10, 0, 0, 7]",
                    "URI:spiffe://minica.internal/svc"
                ],
                "{k}"
            );
            assert!(kc.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
            assert!(format!("{kc:?}").contains("[elided]"));
        }
    }

    #[test]
    fn a_reused_key_keeps_its_public_key_and_no_sans_is_fine() {
        let first = KeyAndCsr::generate(KeyType::EcdsaP256, "a", &[]).unwrap();
        let pkcs8 = pem_der(&first.key_pem());
        let again = KeyAndCsr::reuse(KeyType::EcdsaP256, &pkcs8, "a", &[]).unwrap();
        assert_eq!(again.spki_der(), first.spki_der());
        let der = pem_der(again.csr_pem());
        let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
        csr.verify_signature().unwrap();
        assert!(csr
            .requested_extensions()
            .is_none_or(|mut e| e.next().is_none()));
    }
}
