//! A rustls client and server (ring provider, TLS 1.3, in-process on
//! 127.0.0.1) complete a mutual-TLS handshake with two leaves from
//! `minica issue`, and refuse a client without a certificate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::Scratch;

const LIMIT: Duration = Duration::from_secs(10);

fn identity(dir: &Path) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = minica_pki::pem::load_certs(&dir.join("chain.pem")).unwrap();
    let key = minica_pki::pem::load_private_key(&dir.join("key.pem")).unwrap();
    (chain, key.clone_key())
}

fn roots(dir: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in minica_pki::pem::load_certs(&dir.join("ca.pem")).unwrap() {
        roots.add(cert).unwrap();
    }
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(dir: &Path) -> ServerConfig {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(dir), provider())
        .build()
        .unwrap();
    let (chain, key) = identity(dir);
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap()
}

fn client_builder(
    dir: &Path,
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(dir))
}

#[tokio::test]
async fn mutual_tls_handshake_between_two_issued_leaves() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a", "--server"]).ok();
    s.minica(&["issue", "svc-b", "--client"]).ok();
    let server_dir = s.path("svc-a");
    let client_dir = s.path("svc-b");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&server_dir)));
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        // Two connections: the mTLS client, then one without a certificate.
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let result = async {
                let mut tls = acceptor.accept(tcp).await?;
                let peer = tls.get_ref().1.peer_certificates().map(|c| c[0].to_vec());
                let mut buf = [0u8; 4];
                tls.read_exact(&mut buf).await?;
                tls.write_all(b"pong").await?;
                tls.shutdown().await?;
                Ok::<_, std::io::Error>(peer)
            }
            .await;
            results.push(result);
        }
        results
    });

    let client_cfg = client_builder(&client_dir)
        .with_client_auth_cert(identity(&client_dir).0, identity(&client_dir).1)
        .unwrap();
    let connector = TlsConnector::from(Arc::new(client_cfg));
    let name = ServerName::try_from("svc-a").unwrap();
    let reply = tokio::time::timeout(LIMIT, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        // The server presented svc-a.
        let server_leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let id = minica_pki::identity::PeerIdentity::from_der(&server_leaf).unwrap();
        assert_eq!(id.spiffe_id(), Some("spiffe://minica.internal/svc-a"));
        tls.write_all(b"ping").await.unwrap();
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).await.unwrap();
        reply
    })
    .await
    .expect("mTLS exchange timed out");
    assert_eq!(reply, b"pong");

    // A client with no certificate is refused by the server.
    let anon = client_builder(&client_dir).with_no_client_auth();
    let anon = TlsConnector::from(Arc::new(anon));
    let _ = tokio::time::timeout(LIMIT, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        if let Ok(mut tls) = anon.connect(name, tcp).await {
            let _ = tls.write_all(b"ping").await;
            let mut sink = Vec::new();
            let _ = tls.read_to_end(&mut sink).await;
        }
    })
    .await;

    let results = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    let peer = results[0]
        .as_ref()
        .expect("mTLS handshake failed on the server");
    let peer = peer.as_ref().expect("no client certificate");
    let id = minica_pki::identity::PeerIdentity::from_der(peer).unwrap();
    assert_eq!(id.spiffe_id(), Some("spiffe://minica.internal/svc-b"));
    assert!(
        results[1].is_err(),
        "a client without a certificate was accepted"
    );
}
