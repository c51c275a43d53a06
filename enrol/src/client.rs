//! HTTPS calls to `minica serve`: HTTP/1.1 (hyper) over TLS 1.3 (rustls with
//! the ring provider), one connection per call, every step bounded in time
//! and every answer bounded in size.
//!
//! Trust comes from a bundle, or from a pinned root fingerprint: then a
//! first connection records the server's chain without trusting it and
//! fetches the bundle, the root with the pinned fingerprint is picked from
//! it, and the recorded chain is verified against that root (WebPKI, the
//! URL's host as server name) before anything else is sent. Every later
//! connection verifies the server against that root again.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use minica_pki::recorder::ChainRecorder;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::api::{
    CertResponse, EnrollRequest, ErrorBody, RenewRequest, BUNDLE_PATH, CRL_PATH, ENROLL_PATH,
    RENEW_PATH,
};
use crate::error::Error;
use crate::trust::{CaUrl, Fingerprint, Trust};

/// Bound on the TCP connect and on the TLS handshake, each: a CA on the
/// network answers in well under a second; ten leaves room for a busy host.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a whole call (connect, TLS, request, answer): RSA-4096 signing
/// on a loaded CA stays far below this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: a certificate, chain and bundle take a few KiB;
/// a CRL of ten thousand entries about 400 KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub use minica_pki::files::ClientIdentity;

/// A client of one `minica serve`, with the roots it trusts.
#[derive(Debug, Clone)]
pub struct Client {
    url: CaUrl,
    roots: Vec<CertificateDer<'static>>,
    config: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder(
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, Error> {
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| Error::Tls {
            what: "TLS 1.3 with the ring provider",
            source,
        })
}

impl Client {
    /// A client trusting `roots` (the CA's bundle), presenting `identity`
    /// when given (renewal).
    pub fn new(
        url: CaUrl,
        roots: Vec<CertificateDer<'static>>,
        identity: Option<ClientIdentity>,
    ) -> Result<Self, Error> {
        let provider = provider();
        let mut store = RootCertStore::empty();
        for root in &roots {
            store.add(root.clone()).map_err(|source| Error::Tls {
                what: "CA bundle",
                source,
            })?;
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| Error::Tls {
                    what: "server verifier",
                    source: rustls::Error::General(e.to_string()),
                })?;
        let b = builder(provider)?.with_webpki_verifier(verifier);
        let config = match identity {
            Some(id) => b
                // rustls's ring key provider wipes this copy once parsed;
                // ours is wiped when `id` drops.
                .with_client_auth_cert(id.chain, id.key.clone_key())
                .map_err(|source| Error::Tls {
                    what: "client certificate and key",
                    source,
                })?,
            None => b.with_no_client_auth(),
        };
        Ok(Client {
            url,
            roots,
            config: Arc::new(config),
        })
    }

    /// A client for `trust`: the bundle's roots, or the root with the
    /// pinned fingerprint found in the bundle the server serves (see the
    /// module docs). Fails with [`Error::FingerprintMismatch`] when no root
    /// has it.
    pub async fn connect(
        url: CaUrl,
        trust: &Trust,
        identity: Option<ClientIdentity>,
    ) -> Result<Self, Error> {
        match trust {
            Trust::Bundle(roots) => Client::new(url, roots.clone(), identity),
            Trust::Fingerprint(fp) => {
                let root = pinned_root(&url, fp).await?;
                Client::new(url, vec![root], identity)
            }
        }
    }

    /// The CA URL.
    pub fn url(&self) -> &CaUrl {
        &self.url
    }

    /// The roots this client trusts.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// `POST /v1/enroll`.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<CertResponse, Error> {
        self.post_json(ENROLL_PATH, request).await
    }

    /// `POST /v1/renew` (the client must present its current identity).
    pub async fn renew(&self, request: &RenewRequest) -> Result<CertResponse, Error> {
        self.post_json(RENEW_PATH, request).await
    }

    /// `GET /v1/bundle`: the roots, PEM.
    pub async fn bundle_pem(&self) -> Result<Vec<u8>, Error> {
        let body = exchange(&self.url, &self.config, Method::GET, BUNDLE_PATH, "", None).await?;
        Ok(body.to_vec())
    }

    /// `GET /v1/crl?format=pem`: the CRLs of every CA level, PEM.
    pub async fn crl_pem(&self) -> Result<Vec<u8>, Error> {
        let body = exchange(
            &self.url,
            &self.config,
            Method::GET,
            CRL_PATH,
            "?format=pem",
            None,
        )
        .await?;
        Ok(body.to_vec())
    }

    async fn post_json<T: serde::Serialize>(
        &self,
        path: &'static str,
        request: &T,
    ) -> Result<CertResponse, Error> {
        let body = serde_json::to_vec(request).map_err(|e| self.bad(path, e.to_string()))?;
        let answer = exchange(&self.url, &self.config, Method::POST, path, "", Some(body)).await?;
        serde_json::from_slice(&answer)
            .map_err(|e| self.bad(path, format!("not the JSON of a certificate answer: {e}")))
    }

    fn bad(&self, path: &'static str, reason: String) -> Error {
        Error::BadAnswer {
            url: self.url.to_string(),
            path,
            reason,
        }
    }
}

/// Connects without trusting the server (recording its chain), fetches the
/// bundle, picks the pinned root and verifies the recorded chain with it.
async fn pinned_root(url: &CaUrl, fp: &Fingerprint) -> Result<CertificateDer<'static>, Error> {
    let provider = provider();
    let recorder = Arc::new(ChainRecorder::new(provider.clone()));
    let config = Arc::new(
        builder(provider.clone())?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth(),
    );
    let body = exchange(url, &config, Method::GET, BUNDLE_PATH, "", None).await?;
    let bad = |reason: String| Error::BadAnswer {
        url: url.to_string(),
        path: BUNDLE_PATH,
        reason,
    };
    let roots = minica_pki::pem::parse_certs(std::path::Path::new(BUNDLE_PATH), &body)
        .map_err(|e| bad(e.to_string()))?;
    let root = roots
        .into_iter()
        .find(|r| Fingerprint::of(r) == *fp)
        .ok_or_else(|| Error::FingerprintMismatch {
            url: url.to_string(),
            fingerprint: fp.to_string(),
        })?;
    let chain = recorder
        .chain()
        .ok_or_else(|| bad("the server sent no certificate".into()))?;
    let (end_entity, intermediates) = chain
        .split_first()
        .ok_or_else(|| bad("the server sent no certificate".into()))?;
    let mut store = RootCertStore::empty();
    store.add(root.clone()).map_err(|source| Error::Tls {
        what: "pinned root",
        source,
    })?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| Error::Tls {
            what: "server verifier",
            source: rustls::Error::General(e.to_string()),
        })?;
    verifier
        .verify_server_cert(
            end_entity,
            intermediates,
            &url.server_name()?,
            &[],
            UnixTime::now(),
        )
        .map_err(|source| Error::ServerNotTrusted {
            url: url.to_string(),
            source,
        })?;
    Ok(root)
}

/// A verifier that trusts no one but records the chain (used only to fetch
/// the public bundle before the pinned root is known). The handshake
/// signature is still checked, so the recorded leaf is the server's.
fn io_error(url: &CaUrl, what: &'static str, source: std::io::Error) -> Error {
    // A certificate problem surfaces from tokio-rustls as an io::Error
    // wrapping the rustls error: report it as what it is.
    if let Some(tls) = source
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        if matches!(tls, rustls::Error::InvalidCertificate(_)) {
            return Error::ServerNotTrusted {
                url: url.to_string(),
                source: tls.clone(),
            };
        }
    }
    Error::Connect {
        url: url.to_string(),
        what,
        source,
    }
}

fn timeout_error(url: &CaUrl, what: &'static str, limit: Duration) -> Error {
    Error::Timeout {
        url: url.to_string(),
        what,
        secs: limit.as_secs(),
    }
}

/// One HTTP exchange on a new connection. Returns the body of a 2xx answer;
/// any other status is [`Error::Refused`] with the server's `error` text.
async fn exchange(
    url: &CaUrl,
    config: &Arc<ClientConfig>,
    method: Method,
    path: &'static str,
    query: &str,
    body: Option<Vec<u8>>,
) -> Result<Bytes, Error> {
    let call = async {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((url.host(), url.port())),
        )
        .await
        .map_err(|_| timeout_error(url, "connect", CONNECT_TIMEOUT))?
        .map_err(|e| io_error(url, "cannot connect", e))?;
        let _ = tcp.set_nodelay(true);
        let connector = TlsConnector::from(config.clone());
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(url.server_name()?, tcp))
            .await
            .map_err(|_| timeout_error(url, "TLS handshake", CONNECT_TIMEOUT))?
            .map_err(|e| io_error(url, "TLS handshake failed", e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| Error::Http {
                url: url.to_string(),
                source,
            })?;
        let driver = tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{query}", url.path(path)))
            .header(hyper::header::HOST, url.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("minica/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::BadAnswer {
                url: url.to_string(),
                path,
                reason: format!("cannot build the request: {e}"),
            })?;
        let answer = sender.send_request(request).await;
        let result = match answer {
            Ok(response) => {
                let status = response.status();
                match Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                {
                    Ok(collected) => Ok((status, collected.to_bytes())),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::TooLarge {
                        url: url.to_string(),
                        path,
                        limit: MAX_RESPONSE_BYTES,
                    }),
                    Err(e) => match e.downcast::<hyper::Error>() {
                        Ok(source) => Err(Error::Http {
                            url: url.to_string(),
                            source: *source,
                        }),
                        Err(e) => Err(Error::BadAnswer {
                            url: url.to_string(),
                            path,
                            reason: e.to_string(),
                        }),
                    },
                }
            }
            Err(source) => Err(Error::Http {
                url: url.to_string(),
                source,
            }),
        };
        driver.abort();
        result
    };
    let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, call)
        .await
        .map_err(|_| timeout_error(url, "the request", REQUEST_TIMEOUT))??;
    if status.is_success() {
        return Ok(body);
    }
    Err(refused(url, path, status, &body))
}

fn refused(url: &CaUrl, path: &'static str, status: StatusCode, body: &[u8]) -> Error {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if text.trim().is_empty() {
                status.canonical_reason().unwrap_or("").to_string()
            } else {
                text.trim().to_string()
            }
        }
    };
    Error::Refused {
        url: url.to_string(),
        path,
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_servers_text_and_status() {
        let url: CaUrl = "https://127.0.0.1:1".parse().unwrap();
        let e = refused(
            &url,
            ENROLL_PATH,
            StatusCode::FORBIDDEN,
            br#"{"error":"token already used"}"#,
        );
        assert!(matches!(e, Error::Refused { status: 403, .. }));
        assert_eq!(
            e.to_string(),
            "https://127.0.0.1:1/v1/enroll: the CA refused the request (403): token already used"
        );
        let e = refused(&url, ENROLL_PATH, StatusCode::BAD_GATEWAY, b"");
        assert!(e.to_string().ends_with("(502): Bad Gateway"), "{e}");
        let e = refused(
            &url,
            ENROLL_PATH,
            StatusCode::BAD_REQUEST,
            b"oops\n\x1b[31m",
        );
        assert!(e.to_string().ends_with("(400): oops  [31m"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_ca_is_a_connect_error() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url: CaUrl = format!("https://127.0.0.1:{port}").parse().unwrap();
        let fp = Fingerprint::of(b"any root");
        let err = Client::connect(url, &Trust::Fingerprint(fp), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }
}
