//! Building rustls configurations from loaded PEM material: the ring
//! provider, TLS versions, WebPKI verifiers with CRLs, and the `--allow`
//! check inside the verifier (so a refused peer fails the handshake itself).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use minica_pki::identity::{is_allowed, AllowRule, PeerIdentity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::settings::{TlsFiles, TlsVersions};

/// The PEM material of one route, parsed but not yet checked by rustls.
pub struct Material {
    /// Our chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Our key, wiped when dropped. rustls is handed a `clone_key()`, which
    /// its ring key provider wipes once it has parsed it.
    pub key: Zeroizing<PrivateKeyDer<'static>>,
    /// Trust anchors.
    pub roots: Vec<CertificateDer<'static>>,
    /// CRLs (possibly none).
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("chain", &self.chain.len())
            .field("key", &"[elided]")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

/// The ring provider restricted to the allowed versions' suites. TLS 1.2
/// suites in rustls are all ECDHE key exchange with AEAD ciphers.
pub fn provider(versions: TlsVersions) -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if versions == TlsVersions::Tls13Only {
        p.cipher_suites
            .retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
    }
    Arc::new(p)
}

fn protocol_versions(versions: TlsVersions) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12_AND_13: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    match versions {
        TlsVersions::Tls13Only => &TLS13_ONLY,
        TlsVersions::Tls12And13 => &TLS12_AND_13,
    }
}

fn roots(files: &TlsFiles, material: &Material) -> Result<Arc<RootCertStore>, Error> {
    let mut store = RootCertStore::empty();
    for der in &material.roots {
        store.add(der.clone()).map_err(|source| Error::Material {
            path: files.ca.clone(),
            what: "CA certificate",
            source,
        })?;
    }
    Ok(Arc::new(store))
}

fn verifier_error(files: &TlsFiles) -> impl Fn(rustls::server::VerifierBuilderError) -> Error + '_ {
    move |source| Error::Verifier {
        path: files.crl.clone().unwrap_or_else(|| files.ca.clone()),
        source,
    }
}

fn material_error<'a>(path: &'a Path, what: &'static str) -> impl Fn(rustls::Error) -> Error + 'a {
    move |source| Error::Material {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// With one CRL we check the leaf only (it is the issuing CA's CRL); with
/// several (one per CA level, as `minica crl` publishes) we check the whole
/// chain. Either way a certificate whose issuer has no CRL in the file is
/// refused (unknown revocation status), never waved through.
fn check_whole_chain(material: &Material) -> bool {
    material.crls.len() > 1
}

/// Builds the server config of an inbound route: client certificates are
/// required, verified against the CA and CRLs, then matched against `allow`.
pub fn server_config(
    files: &TlsFiles,
    material: Material,
    versions: TlsVersions,
    allow: Arc<[AllowRule]>,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider(versions);
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(roots(files, &material)?, provider.clone())
            .with_crls(material.crls.clone());
    if !check_whole_chain(&material) {
        builder = builder.only_check_end_entity_revocation();
    }
    let inner = builder.build().map_err(verifier_error(files))?;
    let verifier = Arc::new(AllowClientVerifier { inner, allow });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(protocol_versions(versions))
        .map_err(material_error(&files.cert, "TLS versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.chain, material.key.clone_key())
        .map_err(material_error(&files.key, "certificate and key"))?;
    Ok(Arc::new(config))
}

/// Builds the client config of an outbound route: the server is verified
/// against the CA and CRLs for the server name, then matched against
/// `allow`; our certificate is presented.
pub fn client_config(
    files: &TlsFiles,
    material: Material,
    versions: TlsVersions,
    allow: Arc<[AllowRule]>,
) -> Result<Arc<ClientConfig>, Error> {
    let provider = provider(versions);
    let mut builder =
        WebPkiServerVerifier::builder_with_provider(roots(files, &material)?, provider.clone())
            .with_crls(material.crls.clone());
    if !check_whole_chain(&material) {
        builder = builder.only_check_end_entity_revocation();
    }
    let inner = builder.build().map_err(verifier_error(files))?;
    let verifier = Arc::new(AllowServerVerifier { inner, allow });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(protocol_versions(versions))
        .map_err(material_error(&files.cert, "TLS versions"))?
        // Not a weakening: the verifier runs full WebPKI verification
        // (chain, name, CRLs) first and only adds the --allow check.
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(material.chain, material.key.clone_key())
        .map_err(material_error(&files.key, "certificate and key"))?;
    Ok(Arc::new(config))
}

tokio::task_local! {
    /// Where the verifier of the handshake running on this task leaves the
    /// identity the peer's certificate claims, so that the connection's log
    /// line can name it even when the handshake fails.
    static PEER_IDENTITY: Arc<Mutex<Option<String>>>;
}

/// Runs a handshake future and returns, with its output, the identity the
/// peer's certificate claimed (verified only if the handshake succeeded).
pub async fn capture_peer_identity<F: Future>(handshake: F) -> (F::Output, Option<String>) {
    let slot = Arc::new(Mutex::new(None));
    let out = PEER_IDENTITY.scope(slot.clone(), handshake).await;
    let id = slot.lock().ok().and_then(|mut g| g.take());
    (out, id)
}

/// Parses the peer's identity and records it for [`capture_peer_identity`].
fn claimed_identity(end_entity: &CertificateDer<'_>) -> Option<PeerIdentity> {
    let id = PeerIdentity::from_der(end_entity).ok();
    let name = id.as_ref().map(PeerIdentity::display_name);
    let _ = PEER_IDENTITY.try_with(|slot| {
        if let Ok(mut g) = slot.lock() {
            *g = name;
        }
    });
    id
}

/// Refuses a verified peer whose identity no `allow` rule matches.
fn check_allowed(allow: &[AllowRule], id: Option<PeerIdentity>) -> Result<(), rustls::Error> {
    if allow.is_empty() {
        return Ok(());
    }
    let id = id.ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    if is_allowed(allow, &id) {
        Ok(())
    } else {
        tracing::warn!(peer_identity = %id.display_name(), "peer identity is not allowed (--allow)");
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }
}

#[derive(Debug)]
struct AllowClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allow: Arc<[AllowRule]>,
}

impl ClientCertVerifier for AllowClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let id = claimed_identity(end_entity);
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        check_allowed(&self.allow, id)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct AllowServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    allow: Arc<[AllowRule]>,
}

impl ServerCertVerifier for AllowServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = claimed_identity(end_entity);
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        check_allowed(&self.allow, id)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
