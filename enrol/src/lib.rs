//! The client side of minica's online CA (`minica serve`).
//!
//! # Overview
//! - [`api`]: the HTTP API's paths, limits and JSON bodies, shared with the
//!   server.
//! - [`csr`]: a private key made on this machine (it never leaves it) and a
//!   PKCS#10 CSR for it.
//! - [`trust`]: the CA URL, root fingerprints, and what a client trusts.
//! - [`client`]: HTTPS calls (hyper over rustls, TLS 1.3, ring), bounded in
//!   time and size, with a pinned root or a bundle, and mutual TLS for
//!   renewal.
//! - [`identity`]: identity directories (`cert.pem`, `chain.pem`,
//!   `key.pem`, `ca.pem`), the checks on the CA's answer, atomic writes.
//! - [`enroll`] and [`renew`] put these together; `minica enroll`,
//!   `minica renew --ca-url` and the sidecar's `--renew-from` call them.
//!
//! # Design
//! Nothing here depends on the CA's keys or ledger (`minica-ca`), so the
//! sidecar can renew itself. The flows generate the key in memory and
//! write nothing: the caller writes the checked answer with
//! [`identity::write_identity`] only after everything succeeded. Blocking
//! work (RSA key generation) runs in `spawn_blocking`.
//!
//! # Getting started
//! ```
//! use minica_enrol::trust::{CaUrl, Fingerprint};
//! let url: CaUrl = "https://127.0.0.1:8443".parse().unwrap();
//! assert_eq!(url.path(minica_enrol::api::ENROLL_PATH), "/v1/enroll");
//! let fp: Fingerprint = "SHA256:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
//!     .parse()
//!     .unwrap();
//! assert!(fp.to_string().starts_with("sha256:0011"));
//! // minica_enrol::enroll(&options).await? then identity::write_identity(...).
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod csr;
pub mod error;
pub mod identity;
pub mod trust;

pub use error::Error;

use minica_pki::keygen::KeyType;
use zeroize::Zeroizing;

use crate::api::{EnrollRequest, RenewRequest, ENROLL_PATH, RENEW_PATH};
use crate::client::Client;
use crate::csr::KeyAndCsr;
use crate::identity::{check_answer, CurrentIdentity, Expect, ExpectNames, Issued};
use crate::trust::{CaUrl, Trust};

/// What `minica enroll` needs.
#[derive(Clone)]
pub struct EnrollOptions {
    /// The CA.
    pub url: CaUrl,
    /// What to trust.
    pub trust: Trust,
    /// The one-time token (a secret: never logged).
    pub token: String,
    /// NAME: the CSR's CN; the certificate must carry it as a SAN.
    pub name: String,
    /// The key to generate.
    pub key_type: KeyType,
}

impl std::fmt::Debug for EnrollOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollOptions")
            .field("url", &self.url)
            .field("trust", &self.trust)
            .field("token", &"[elided]")
            .field("name", &self.name)
            .field("key_type", &self.key_type)
            .finish()
    }
}

/// A checked certificate and, for a new key, the key to write.
pub struct Obtained {
    /// The files to write.
    pub issued: Issued,
    /// `key.pem` (PKCS#8 PEM), `None` when the key was reused. Wiped when
    /// dropped.
    pub key_pem: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obtained")
            .field("issued", &self.issued)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "[elided]"))
            .finish()
    }
}

/// Whether renewal makes a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// A new key of the same type (the default).
    New,
    /// Keep the current key (`--reuse-key`).
    Reuse,
}

async fn generate(key_type: KeyType, name: String) -> Result<KeyAndCsr, Error> {
    tokio::task::spawn_blocking(move || KeyAndCsr::generate(key_type, &name, &[]))
        .await
        .map_err(Error::KeyTask)?
}

/// Enrols with a one-time token: generates the key, connects with the
/// given trust, sends the CSR and checks the answer. Writes nothing.
pub async fn enroll(options: &EnrollOptions) -> Result<Obtained, Error> {
    // Trust first: a wrong fingerprint or an unreachable CA fails before
    // the (possibly slow) key generation.
    let client = Client::connect(options.url.clone(), &options.trust, None).await?;
    let key = generate(options.key_type, options.name.clone()).await?;
    let answer = client
        .enroll(&EnrollRequest {
            token: options.token.clone(),
            csr: key.csr_pem().to_string(),
        })
        .await?;
    let issued = check_answer(
        &options.url,
        ENROLL_PATH,
        &answer,
        &Expect {
            spki: key.spki_der(),
            names: ExpectNames::Includes(&options.name),
            trusted_roots: client.roots(),
        },
    )?;
    Ok(Obtained {
        issued,
        key_pem: Some(key.key_pem()),
    })
}

/// Renews `current` over mutual TLS (its chain and key), trusting its
/// `ca.pem`. The new certificate must carry the same names. Writes nothing.
pub async fn renew(
    url: &CaUrl,
    current: &CurrentIdentity,
    key: KeyChoice,
) -> Result<Obtained, Error> {
    let name = current.leaf.name().ok_or_else(|| Error::Identity {
        path: current.dir.join("chain.pem"),
        reason: error::IdentityError::BadCertificate(
            "the certificate has no CN and no DNS or IP name".into(),
        ),
    })?;
    let client = Client::new(
        url.clone(),
        current.roots.clone(),
        Some(current.client_identity()),
    )?;
    let new_key = match key {
        KeyChoice::New => generate(current.key_type, name).await?,
        KeyChoice::Reuse => KeyAndCsr::reuse(current.key_type, current.key_pkcs8(), &name, &[])?,
    };
    let answer = client
        .renew(&RenewRequest {
            csr: new_key.csr_pem().to_string(),
        })
        .await?;
    let issued = check_answer(
        url,
        RENEW_PATH,
        &answer,
        &Expect {
            spki: new_key.spki_der(),
            names: ExpectNames::Same(&current.leaf.sans),
            trusted_roots: &current.roots,
        },
    )?;
    Ok(Obtained {
        issued,
        key_pem: match key {
            KeyChoice::New => Some(new_key.key_pem()),
            KeyChoice::Reuse => None,
        },
    })
}
