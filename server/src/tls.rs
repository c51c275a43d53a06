//! TLS for the API listener: the server's own certificate (issued by this
//! CA at start, kept in memory, re-issued at two thirds of its lifetime and
//! swapped in without a restart) and the client verifier (optional client
//! certificates chaining to any root of the bundle).

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use minica_ca::{Ca, IssuedLeaf, KeyType, LeafKey, LeafRequest, Name, Profile, San, Serial};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::error::Error;

/// The NAME of the server's own certificate in the ledger.
pub const SERVER_CERT_NAME: &str = "minica-serve";

/// The host clients connect to, which the server certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenHost {
    /// An IP address (`--listen 10.0.0.5:8443`).
    Ip(IpAddr),
    /// A DNS name (`--listen ca.internal:8443`).
    Dns(String),
}

impl ListenHost {
    /// The SANs of the server certificate: the host, plus `localhost` and
    /// the loopback addresses when the host is a loopback or unspecified
    /// address.
    pub(crate) fn sans(&self) -> Vec<San> {
        match self {
            ListenHost::Dns(d) => vec![San::Dns(d.clone())],
            ListenHost::Ip(ip) => {
                let mut sans = Vec::new();
                if !ip.is_unspecified() {
                    sans.push(San::Ip(*ip));
                }
                if ip.is_loopback() || ip.is_unspecified() {
                    sans.push(San::Dns("localhost".into()));
                    for lo in [
                        IpAddr::from([127, 0, 0, 1]),
                        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    ] {
                        if !sans.contains(&San::Ip(lo)) {
                            sans.push(San::Ip(lo));
                        }
                    }
                }
                sans
            }
        }
    }
}

/// The server certificate in use: what the resolver hands to rustls.
#[derive(Debug)]
pub(crate) struct ServerCert {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) serial: Serial,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

impl ServerCert {
    /// When to re-issue it: at two thirds of its lifetime, counted from
    /// when it was issued (notBefore is backdated by [`minica_ca::BACKDATE`]).
    pub(crate) fn renew_at(&self) -> OffsetDateTime {
        let issued = self.not_before + minica_ca::BACKDATE;
        issued + (self.not_after - issued) * 2 / 3
    }
}

/// Issues (and records) a server certificate for `host`, replacing
/// `previous` in the ledger. Blocking: call it from `spawn_blocking`.
pub(crate) fn issue_server_cert(
    ca: &Ca,
    provider: &CryptoProvider,
    host: &ListenHost,
    validity: Duration,
    previous: Option<&Serial>,
) -> Result<ServerCert, Error> {
    let name: Name = SERVER_CERT_NAME.parse()?;
    let request = LeafRequest {
        name,
        extra_sans: host.sans(),
        profile: Profile::Server,
        key: LeafKey::Generate(KeyType::EcdsaP256),
        validity,
    };
    let leaf = ca.issue_service_leaf(&request, previous)?;
    certified(&leaf, provider)
}

fn certified(leaf: &IssuedLeaf, provider: &CryptoProvider) -> Result<ServerCert, Error> {
    let chain =
        minica_pki::pem::parse_certs(Path::new("server chain"), leaf.chain_pem().as_bytes())
            .map_err(minica_ca::Error::from)?;
    let key_der = match leaf.key() {
        Some(key) => key.key_pair()?.serialize_der(),
        None => {
            return Err(Error::Tls(rustls::Error::General(
                "the server certificate has no private key".into(),
            )))
        }
    };
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)))?;
    Ok(ServerCert {
        key: Arc::new(CertifiedKey::new(chain, key)),
        serial: leaf.record.serial.clone(),
        not_before: leaf.record.not_before,
        not_after: leaf.record.not_after,
    })
}

/// Hands rustls the current server certificate; [`CertResolver::swap`]
/// replaces it for the handshakes that follow.
#[derive(Debug)]
pub(crate) struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Self {
        CertResolver {
            current: RwLock::new(key),
        }
    }

    pub(crate) fn swap(&self, key: Arc<CertifiedKey>) {
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(guard) => Some(guard.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// Every root of the bundle, for client authentication.
pub(crate) fn roots(bundle_path: &Path, bundle_pem: &str) -> Result<RootCertStore, Error> {
    let certs: Vec<CertificateDer<'static>> =
        minica_pki::pem::parse_certs(bundle_path, bundle_pem.as_bytes())
            .map_err(minica_ca::Error::from)?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Roots {
            path: bundle_path.to_path_buf(),
            reason: "no certificate could be used as a trust anchor".into(),
        });
    }
    Ok(store)
}

/// The listener's TLS configuration: TLS 1.3 only, HTTP/1.1, client
/// certificates optional (verified against `roots` when sent).
pub(crate) fn server_config(
    provider: Arc<CryptoProvider>,
    roots: RootCertStore,
    resolver: Arc<CertResolver>,
) -> Result<ServerConfig, Error> {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `sha256:` and the lowercase hex SHA-256 of a certificate: the format
/// `minica enroll --root-fingerprint` takes.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cert_names() {
        let lo = ListenHost::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(
            lo.sans(),
            vec![
                San::Ip("127.0.0.1".parse().unwrap()),
                San::Dns("localhost".into()),
                San::Ip("::1".parse().unwrap())
            ]
        );
        let any = ListenHost::Ip("0.0.0.0".parse().unwrap());
        assert!(!any.sans().contains(&San::Ip("0.0.0.0".parse().unwrap())));
        let ip = ListenHost::Ip("10.0.0.5".parse().unwrap());
        assert_eq!(ip.sans(), vec![San::Ip("10.0.0.5".parse().unwrap())]);
        let dns = ListenHost::Dns("ca.internal".into());
        assert_eq!(dns.sans(), vec![San::Dns("ca.internal".into())]);
        assert_eq!(fingerprint(b"x").len(), 7 + 64);
    }
}
