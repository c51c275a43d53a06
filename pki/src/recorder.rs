//! A rustls server-certificate verifier that records the server's chain
//! without judging it, for clients that judge it afterwards themselves
//! (`minica probe` explains what is wrong with it; `minica enroll
//! --root-fingerprint` checks it against the pinned root). The handshake
//! signatures are still checked with the provider's real algorithms, so
//! the TLS session itself is sound: only the trust decision moves.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any certificate chain and keeps the first one it sees.
#[derive(Debug)]
pub struct ChainRecorder {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Option<Vec<CertificateDer<'static>>>>,
}

impl ChainRecorder {
    /// A recorder that checks handshake signatures with `provider`.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        ChainRecorder {
            provider,
            chain: Mutex::new(None),
        }
    }

    /// The chain of the first handshake (end entity first), if any.
    pub fn chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        if chain.is_none() {
            let mut all = vec![end_entity.clone().into_owned()];
            all.extend(intermediates.iter().map(|c| c.clone().into_owned()));
            *chain = Some(all);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
