//! Reading certificates, private keys and CRLs from files, PEM or DER.
//!
//! Every function takes the path so that its error can name the file.
//!
//! # Secrets
//! Private keys are read with [`read_secret_file`], parsed into
//! [`Zeroizing`] buffers and encoded with [`encode_pkcs8_pem`]: every buffer
//! of this module that holds key material (file bytes, DER, PEM text) is
//! wiped when dropped, and none is left behind by a reallocation. Not wiped:
//! the base64 scratch buffer inside `rustls-pki-types`' PEM parser (a
//! library internal, see docs/SECURITY.md), and stack temporaries.

use std::io::{ErrorKind, Read};
use std::path::Path;

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{ContentError, Error};

/// Reads a whole file, naming it in the error. For a file that may hold a
/// secret, use [`read_secret_file`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole file that may hold a secret (a private key, a password)
/// into a buffer that is wiped when dropped, naming the file in the error.
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_or(0, |m| m.len());
    read_to_end_wiped(&mut file, usize::try_from(size).unwrap_or(0)).map_err(io)
}

/// Reads `reader` to its end into a wiped-on-drop buffer of about `size`
/// bytes. `Vec::read_to_end` would grow the vector by reallocating, which
/// frees the old copy without wiping it; here a larger buffer is made by
/// hand and the smaller one is wiped as it is dropped.
fn read_to_end_wiped(reader: &mut impl Read, size: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    // One byte more than the size, so that the read that finds the end of
    // a file of exactly that size needs no larger buffer.
    let mut buf = Zeroizing::new(vec![0u8; size.saturating_add(1).max(64)]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            let mut larger = Zeroizing::new(vec![0u8; buf.len().saturating_mul(2)]);
            larger[..len].copy_from_slice(&buf[..len]);
            buf = larger;
        }
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Shortening keeps the allocation (and wiping covers all of it).
    buf.truncate(len);
    Ok(buf)
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

/// One PEM section: its kind and its DER, wiped when dropped (any file may
/// hold a private key). Move the DER out with `std::mem::take` to keep it.
pub type PemSection = (SectionKind, Zeroizing<Vec<u8>>);

/// Every PEM section in `bytes`, in order.
pub fn pem_sections(path: &Path, bytes: &[u8]) -> Result<Vec<PemSection>, Error> {
    let sections = <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(bytes)
        .map(|section| section.map(|(kind, der)| (kind, Zeroizing::new(der))))
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
    private_key_der(kind).is_some()
}

/// How a PEM section of `kind` becomes a private key, if it is one.
fn private_key_der(kind: SectionKind) -> Option<fn(Vec<u8>) -> PrivateKeyDer<'static>> {
    match kind {
        SectionKind::PrivateKey => Some(|der| PrivateKeyDer::Pkcs8(der.into())),
        SectionKind::RsaPrivateKey => Some(|der| PrivateKeyDer::Pkcs1(der.into())),
        SectionKind::EcPrivateKey => Some(|der| PrivateKeyDer::Sec1(der.into())),
        _ => None,
    }
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
    let has_key = sections.iter().any(|(kind, _)| is_private_key(*kind));
    let certs: Vec<_> = sections
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, mut der)| CertificateDer::from(std::mem::take(&mut *der)))
        .collect();
    if certs.is_empty() {
        if has_key {
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
/// The key owns its bytes and is wiped when dropped.
pub fn parse_private_key(
    path: &Path,
    bytes: &[u8],
) -> Result<Zeroizing<PrivateKeyDer<'static>>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(content(path, ContentError::Empty));
    }
    if !looks_like_pem(bytes) {
        return der_private_key(bytes).ok_or_else(|| content(path, ContentError::NoPrivateKey));
    }
    // Each key's buffer moves from one wiped-on-drop wrapper to the next;
    // the sections not taken are wiped with the list.
    let mut keys = pem_sections(path, bytes)?
        .into_iter()
        .filter_map(|(kind, mut der)| {
            private_key_der(kind).map(|make| Zeroizing::new(make(std::mem::take(&mut *der))))
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
fn der_private_key(bytes: &[u8]) -> Option<Zeroizing<PrivateKeyDer<'static>>> {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, seq) = x509_parser::der_parser::der::parse_der_sequence(bytes).ok()?;
    let BerObjectContent::Sequence(fields) = &seq.content else {
        return None;
    };
    let kind = match (
        fields.first()?.content.as_u32().ok()?,
        &fields.get(1)?.content,
    ) {
        (_, BerObjectContent::Sequence(_)) => SectionKind::PrivateKey,
        (1, BerObjectContent::OctetString(_)) => SectionKind::EcPrivateKey,
        (0, BerObjectContent::Integer(_)) => SectionKind::RsaPrivateKey,
        _ => return None,
    };
    // The one copy, made only once the format is known, straight into the
    // key that owns it.
    private_key_der(kind).map(|make| Zeroizing::new(make(bytes.to_vec())))
}

/// Reads exactly one private key from a file (through
/// [`read_secret_file`]). The key is wiped when dropped.
pub fn load_private_key(path: &Path) -> Result<Zeroizing<PrivateKeyDer<'static>>, Error> {
    parse_private_key(path, &read_secret_file(path)?)
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
        .map(|(_, mut der)| CertificateRevocationListDer::from(std::mem::take(&mut *der)))
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

/// Encodes a PKCS#8 DER private key as PEM (`PRIVATE KEY`, `\n` line
/// endings), as [`encode_pem`] does, into a string that is wiped when
/// dropped. The string is sized exactly up front, so it never reallocates
/// (which would leave an unwiped copy), and the base64 digits are computed
/// in constant time, without table lookups indexed by key bits
/// (`pem-rfc7468` over `base64ct`).
pub fn encode_pkcs8_pem(pkcs8: &[u8]) -> Zeroizing<String> {
    use pem_rfc7468::LineEnding;
    const LABEL: &str = "PRIVATE KEY";
    // reason: the buffer is sized by `encoded_len` for this fixed, valid
    // label, which is all `encode` can fail on.
    #[allow(clippy::expect_used)]
    let size = pem_rfc7468::encoded_len(LABEL, LineEnding::LF, pkcs8).expect("PEM length");
    let mut buf = Zeroizing::new(vec![0u8; size]);
    #[allow(clippy::expect_used)]
    let text = pem_rfc7468::encode(LABEL, LineEnding::LF, pkcs8, &mut buf).expect("PEM encoding");
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    out.push_str(text);
    out
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
            *parse_private_key(p, key_pem.as_bytes()).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        let two = format!("{key_pem}{key_pem}");
        assert!(parse_private_key(p, two.as_bytes()).is_err());
        let err = parse_private_key(p, cert_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no private key"), "{err}");
        // DER: PKCS#8 as such; SEC1 (what `openssl pkey -outform DER` writes
        // for an EC key) recognised as SEC1, not taken for PKCS#8.
        let pkcs8 = match &*parse_private_key(p, key_pem.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            *parse_private_key(p, &pkcs8).unwrap(),
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
            *parse_private_key(p, sec1.secret_der()).unwrap(),
            PrivateKeyDer::Sec1(_)
        ));
        assert!(parse_private_key(p, &[0x30, 0x03, 0x02, 0x01, 0x05]).is_err());
        let empty = "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n";
        let err = parse_private_key(p, empty.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("holds no data"), "{err}");
    }

    #[test]
    fn parsed_keys_own_their_bytes_so_wiping_empties_them() {
        use zeroize::Zeroize;
        let (_, key_pem) = fixture();
        let p = Path::new("k.pem");
        let pkcs8 = parse_private_key(p, key_pem.as_bytes())
            .unwrap()
            .secret_der()
            .to_vec();
        // A key that borrowed its bytes would survive `zeroize` (the
        // wrapper can only wipe what the key owns): PEM and DER alike must
        // come back owned.
        for input in [key_pem.as_bytes(), pkcs8.as_slice()] {
            let mut key = parse_private_key(p, input).unwrap();
            assert_eq!(key.secret_der(), pkcs8.as_slice());
            key.zeroize();
            assert!(key.secret_der().is_empty());
        }
    }

    #[test]
    fn secret_reads_grow_without_losing_bytes() {
        // A reader that hands out a few bytes at a time and is interrupted
        // once, longer than the size it was announced with.
        struct Trickle<'a> {
            data: &'a [u8],
            interrupted: bool,
        }
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if !self.interrupted {
                    self.interrupted = true;
                    return Err(ErrorKind::Interrupted.into());
                }
                let n = buf.len().min(7).min(self.data.len());
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                Ok(n)
            }
        }
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for size in [0, 1, 4999, 5000, 9000] {
            let mut r = Trickle {
                data: &data,
                interrupted: false,
            };
            let got = read_to_end_wiped(&mut r, size).unwrap();
            assert_eq!(got.as_slice(), data.as_slice(), "announced {size}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().as_slice(), data.as_slice());
        let err = read_secret_file(&dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }

    #[test]
    fn secret_pem_matches_the_pem_crate_and_never_reallocates() {
        // Every padding case (length mod 3) and line break position.
        for len in 1..=200usize {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let ours = encode_pkcs8_pem(&der);
            assert_eq!(*ours, encode_pem("PRIVATE KEY", &der), "length {len}");
            // Sized exactly up front: a reallocation would have doubled it.
            assert_eq!(ours.capacity(), ours.len(), "length {len}");
        }
    }
}
