//! Test PKI made with rcgen, in the file layout `minica issue` writes:
//! `cert.pem`, `chain.pem` (leaf + intermediate), `key.pem`, `ca.pem` (root).
//! Root -> intermediate -> leaves; plus another CA, expired leaves, and CRLs
//! signed by the intermediate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// The trust domain of every test identity.
pub(crate) const TRUST_DOMAIN: &str = "minica.internal";

/// A random positive 64-bit serial.
fn random_serial() -> (SerialNumber, String) {
    let mut bytes = RandomState::new().build_hasher().finish().to_be_bytes();
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
    (SerialNumber::from_slice(&bytes), hex)
}

/// When a leaf is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Validity {
    /// From a day ago for 30 days.
    Current,
    /// Ended yesterday.
    Expired,
}

/// One issued leaf.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Directory with cert.pem, chain.pem, key.pem, ca.pem.
    pub(crate) dir: PathBuf,
    /// Serial, lowercase hex.
    pub(crate) serial: String,
}

impl Leaf {
    /// A file of the leaf's directory.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A root and an intermediate that issue leaves.
pub(crate) struct Pki {
    root_dir: PathBuf,
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

fn ca_params(cn: &str, path_len: u8) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(2);
    p.not_after = now + Duration::days(365);
    p.serial_number = Some(random_serial().0);
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    p
}

impl Pki {
    /// A new root + intermediate; the root certificate is written to
    /// `dir/ca.pem`.
    pub(crate) fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let root = CertifiedIssuer::self_signed(
            ca_params(&format!("{name} root"), 1),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params(&format!("{name} intermediate"), 0),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        std::fs::write(dir.join("ca.pem"), root.pem()).unwrap();
        Pki {
            root_dir: dir.to_path_buf(),
            root,
            intermediate,
        }
    }

    /// The root CA bundle (`ca.pem`).
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.root_dir.join("ca.pem")
    }

    /// Issues a leaf for `name` (DNS SANs `name` and `localhost`, IP SAN
    /// 127.0.0.1, URI SAN spiffe://minica.internal/NAME; server and client
    /// auth) into `dir`.
    pub(crate) fn issue(&self, dir: &Path, name: &str, validity: Validity) -> Leaf {
        let key = KeyPair::generate().unwrap();
        self.issue_with_key(dir, name, validity, &key)
    }

    /// Like [`Pki::issue`], with a given key.
    pub(crate) fn issue_with_key(
        &self,
        dir: &Path,
        name: &str,
        validity: Validity,
        key: &KeyPair,
    ) -> Leaf {
        std::fs::create_dir_all(dir).unwrap();
        let mut p = CertificateParams::new(vec![
            name.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        p.subject_alt_names.push(SanType::URI(
            format!("spiffe://{TRUST_DOMAIN}/{name}")
                .try_into()
                .unwrap(),
        ));
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        match validity {
            Validity::Current => {
                p.not_before = now - Duration::days(1);
                p.not_after = now + Duration::days(30);
            }
            Validity::Expired => {
                p.not_before = now - Duration::days(10);
                p.not_after = now - Duration::days(1);
            }
        }
        let (serial, hex) = random_serial();
        p.serial_number = Some(serial);
        let cert = p.signed_by(key, &self.intermediate).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(
            dir.join("chain.pem"),
            format!("{}{}", cert.pem(), self.intermediate.pem()),
        )
        .unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), self.root.pem()).unwrap();
        Leaf {
            dir: dir.to_path_buf(),
            serial: hex,
        }
    }

    /// Writes a CRL signed by the intermediate, revoking `serials` (hex).
    pub(crate) fn crl(&self, path: &Path, serials: &[&str]) {
        let now = OffsetDateTime::now_utc();
        let revoked = serials
            .iter()
            .map(|hex| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&hex_bytes(hex)),
                revocation_time: now - Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.intermediate).unwrap();
        std::fs::write(path, crl.pem().unwrap()).unwrap();
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
