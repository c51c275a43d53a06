//! Reading certificates, private keys and CRLs from files, PEM or DER.
//!
//! Every function takes the path so that its error can name the file.

use std::path::Path;

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::error::{ContentError, Error};

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn content(path: &Path, reason: ContentError) -> Error {
    Error::Content {
        path: path.to_path_buf(),
        reason,
    }
}

/// True when the bytes look like PEM text rather than DER.
fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every PEM section in `bytes`, in order, as (kind, DER).
pub fn pem_sections(path: &Path, bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, Error> {
    let sections = <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(path, ContentError::MalformedPem(e.to_string())))?;
    if sections.iter().any(|(_, der)| der.is_empty()) {
        return Err(content(
            path,
            ContentError::MalformedPem("a PEM section holds no data".into()),
        ));
    }
    Ok(sections)
}

fn is_private_key(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

/// Parses every certificate in `bytes` (PEM with any number of certificates,
/// or one DER certificate).
pub fn parse_certs(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(content(path, ContentError::Empty));
    }
    if !looks_like_pem(bytes) {
        // DER: a SEQUENCE. Whether it is really a certificate is for the
        // X.509 parser to say.
        return if bytes.first() == Some(&0x30) {
            Ok(vec![CertificateDer::from(bytes.to_vec())])
        } else {
            Err(content(path, ContentError::NoCertificate))
        };
    }
    let sections = pem_sections(path, bytes)?;
    let certs: Vec<_> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        if sections.iter().any(|(kind, _)| is_private_key(*kind)) {
            return Err(content(path, ContentError::PrivateKeyNotCertificate));
        }
        return Err(content(path, ContentError::NoCertificate));
    }
    Ok(certs)
}

/// Reads every certificate in a PEM or DER file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    parse_certs(path, &read_file(path)?)
}

/// Parses exactly one private key (PKCS#8, PKCS#1 or SEC1 PEM, or PKCS#8 DER).
pub fn parse_private_key(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(content(path, ContentError::Empty));
    }
    if !looks_like_pem(bytes) {
        return der_private_key(bytes).ok_or_else(|| content(path, ContentError::NoPrivateKey));
    }
    let mut keys = pem_sections(path, bytes)?
        .into_iter()
        .filter_map(|(kind, der)| match kind {
            SectionKind::PrivateKey => Some(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => Some(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => Some(PrivateKeyDer::Sec1(der.into())),
            _ => None,
        });
    let key = keys
        .next()
        .ok_or_else(|| content(path, ContentError::NoPrivateKey))?;
    if keys.next().is_some() {
        return Err(content(path, ContentError::SeveralPrivateKeys));
    }
    Ok(key)
}

/// Tells a DER private key's format by its first fields (all three are a
/// SEQUENCE starting with an INTEGER version):
/// - PKCS#8: then the algorithm, a SEQUENCE;
/// - SEC1 (`openssl pkey -outform DER` of an EC key): then the key, an OCTET STRING;
/// - PKCS#1 (RSA): then the modulus, an INTEGER.
fn der_private_key(bytes: &[u8]) -> Option<PrivateKeyDer<'static>> {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, seq) = x509_parser::der_parser::der::parse_der_sequence(bytes).ok()?;
    let BerObjectContent::Sequence(fields) = &seq.content else {
        return None;
    };
    let der = bytes.to_vec();
    match (
        fields.first()?.content.as_u32().ok()?,
        &fields.get(1)?.content,
    ) {
        (_, BerObjectContent::Sequence(_)) => Some(PrivateKeyDer::Pkcs8(der.into())),
        (1, BerObjectContent::OctetString(_)) => Some(PrivateKeyDer::Sec1(der.into())),
        (0, BerObjectContent::Integer(_)) => Some(PrivateKeyDer::Pkcs1(der.into())),
        _ => None,
    }
}

/// Reads exactly one private key from a file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    parse_private_key(path, &read_file(path)?)
}

/// Parses every CRL in `bytes` (PEM with any number of CRLs, or one DER CRL).
pub fn parse_crls(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(content(path, ContentError::Empty));
    }
    if !looks_like_pem(bytes) {
        return if bytes.first() == Some(&0x30) {
            Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())])
        } else {
            Err(content(path, ContentError::NoCrl))
        };
    }
    let crls: Vec<_> = pem_sections(path, bytes)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Crl)
        .map(|(_, der)| CertificateRevocationListDer::from(der))
        .collect();
    if crls.is_empty() {
        return Err(content(path, ContentError::NoCrl));
    }
    Ok(crls)
}

/// Reads every CRL in a PEM or DER file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    parse_crls(path, &read_file(path)?)
}

/// Encodes DER as one PEM block with the given label (e.g. `CERTIFICATE`),
/// with `\n` line endings.
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let block = ::pem::Pem::new(label, der.to_vec());
    ::pem::encode_config(
        &block,
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["svc-a".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_pem_and_der_certificates() {
        let (cert_pem, _) = fixture();
        let p = Path::new("c.pem");
        let certs = parse_certs(p, format!("{cert_pem}{cert_pem}").as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        let der = parse_certs(p, certs[0].as_ref()).unwrap();
        assert_eq!(der[0], certs[0]);
    }

    #[test]
    fn encode_round_trips_through_the_parser() {
        let (cert_pem, _) = fixture();
        let p = Path::new("c.pem");
        let der = parse_certs(p, cert_pem.as_bytes()).unwrap().remove(0);
        let again = encode_pem("CERTIFICATE", der.as_ref());
        assert_eq!(again, cert_pem.replace("\r\n", "\n"));
    }

    #[test]
    fn rejects_empty_garbage_and_keys_with_the_file_name() {
        let (_, key_pem) = fixture();
        let p = Path::new("/tmp/x.pem");
        let err = parse_certs(p, b"").unwrap_err().to_string();
        assert!(err.contains("/tmp/x.pem") && err.contains("empty"), "{err}");
        let err = parse_certs(p, b"hello").unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
        let err = parse_certs(p, key_pem.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("private key, not a certificate"), "{err}");
        let err = parse_crls(p, b"junk").unwrap_err().to_string();
        assert!(err.contains("no CRL"), "{err}");
    }

    #[test]
    fn reads_exactly_one_private_key() {
        let (cert_pem, key_pem) = fixture();
        let p = Path::new("k.pem");
        assert!(matches!(
            parse_private_key(p, key_pem.as_bytes()).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        let two = format!("{key_pem}{key_pem}");
        assert!(parse_private_key(p, two.as_bytes()).is_err());
        let err = parse_private_key(p, cert_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no private key"), "{err}");
        // DER: PKCS#8 as such; SEC1 (what `openssl pkey -outform DER` writes
        // for an EC key) recognised as SEC1, not taken for PKCS#8.
        let pkcs8 = match parse_private_key(p, key_pem.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            parse_private_key(p, &pkcs8).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        // From `openssl pkey -outform DER | openssl ec -inform DER` (a test key).
        let sec1 = PrivateKeyDer::from_pem_slice(
            b"-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEII2iYf23nInqo7GZWiIw7RLPLS/DPJtY//RurhNXAhX6oAoGCCqGSM49\n\
AwEHoUQDQgAEmXcNjwJ5be+E4vCziLQKqbPihIOqmnbRZuyWZ3/WoS+SPc2nXKM1\n\
5LUIcVwqNDdhD4SPLlqiElNfiRTORzOslQ==\n\
-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            parse_private_key(p, sec1.secret_der()).unwrap(),
            PrivateKeyDer::Sec1(_)
        ));
        assert!(parse_private_key(p, &[0x30, 0x03, 0x02, 0x01, 0x05]).is_err());
        let empty = "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n";
        let err = parse_private_key(p, empty.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("holds no data"), "{err}");
    }
}
