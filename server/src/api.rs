//! The HTTP API (paths and bodies in [`minica_enrol::api`]) and the admin
//! endpoints. Handlers only move bytes: every decision is made by
//! [`minica_ca::Ca`] on a blocking thread.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use minica_ca::enroll::{EnrollError, ErrorClass};
use minica_ca::{Ca, IssuedLeaf};
use minica_enrol::api::{
    CertResponse, EnrollRequest, ErrorBody, RenewRequest, BUNDLE_PATH, CRL_PATH, ENROLL_PATH,
    HEALTH_PATH, MAX_BODY_BYTES, METRICS_PATH, RENEW_PATH,
};
use rustls_pki_types::CertificateDer;
use tokio::sync::Semaphore;

use crate::crl::CrlCache;
use crate::metrics::{Metrics, Outcome};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) ca: Arc<Ca>,
    pub(crate) bundle_pem: String,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) crl: CrlCache,
    /// Bounds the CA operations running at once (signing is CPU bound):
    /// a flood of requests queues here instead of exhausting the blocking
    /// thread pool.
    pub(crate) permits: Semaphore,
    /// The client certificates being renewed right now (DER): a second
    /// concurrent renewal with the same certificate is refused (409), so
    /// that one certificate cannot be renewed twice by this server.
    pub(crate) renewing: std::sync::Mutex<std::collections::HashSet<Vec<u8>>>,
}

/// Marks a certificate as being renewed until dropped.
struct InFlight<'a> {
    app: &'a App,
    der: Vec<u8>,
}

impl<'a> InFlight<'a> {
    /// `None` when a renewal with `der` is already running.
    fn claim(app: &'a App, der: &[u8]) -> Option<Self> {
        let mut set = match app.renewing.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.insert(der.to_vec()).then(|| InFlight {
            app,
            der: der.to_vec(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut set = match self.app.renewing.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.remove(&self.der);
    }
}

/// The client certificate chain of the connection (none without mutual TLS).
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerCerts(pub(crate) Option<Arc<Vec<CertificateDer<'static>>>>);

const PEM: &str = "application/x-pem-file";
const TEXT: &str = "text/plain; charset=utf-8";

/// The API router (the TLS listener adds [`PeerCerts`] per connection).
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(ENROLL_PATH, post(enroll))
        .route(RENEW_PATH, post(renew))
        .route(BUNDLE_PATH, get(bundle))
        .route(CRL_PATH, get(crl))
        .route(HEALTH_PATH, get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// The admin router: `/metrics` and `/healthz`, plain HTTP.
pub(crate) fn admin_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            METRICS_PATH,
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render(),
                )
            }),
        )
        .route(
            HEALTH_PATH,
            get(|| async { ([(header::CONTENT_TYPE, TEXT)], "ok\n") }),
        )
        .with_state(metrics)
}

/// A JSON error answer.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

fn status_of(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::Forbidden => StatusCode::FORBIDDEN,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn counted(app: &App, endpoint: &'static str, response: Response) -> Response {
    app.metrics.request(endpoint, response.status().as_u16());
    response
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]: a larger declared
/// length is refused before reading anything, a longer body as soon as
/// the limit is passed.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        crate::BODY_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| {
        Refusal(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}s",
                crate::BODY_TIMEOUT.as_secs()
            ),
        )
    })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            "could not read the request body".into(),
        )),
    }
}

/// A request refused before it reached the CA.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON request: {e}"),
        )
    })
}

/// Runs a CA operation on a blocking thread, bounded by the permits, and
/// records its latency.
async fn on_ca<F>(app: &Arc<App>, op: F) -> Result<IssuedLeaf, EnrollError>
where
    F: FnOnce(&App) -> Result<IssuedLeaf, EnrollError> + Send + 'static,
{
    let _permit = app.permits.acquire().await.map_err(|_| {
        EnrollError::Ca(minica_ca::Error::Io {
            path: "minica serve".into(),
            source: std::io::Error::other("shutting down"),
        })
    })?;
    let start = Instant::now();
    let worker = app.clone();
    let result = tokio::task::spawn_blocking(move || op(&worker))
        .await
        .unwrap_or_else(|e| {
            Err(EnrollError::Ca(minica_ca::Error::Io {
                path: "minica serve".into(),
                source: std::io::Error::other(format!("CA task failed: {e}")),
            }))
        });
    app.metrics.issuance(start.elapsed());
    result
}

fn issued(app: &App, leaf: &IssuedLeaf) -> Response {
    let body = CertResponse {
        certificate: leaf.cert_pem(),
        chain: leaf.chain_pem().to_string(),
        bundle: app.bundle_pem.clone(),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn refused(e: &EnrollError) -> (Outcome, Response) {
    let class = e.class();
    let message = if class == ErrorClass::Internal {
        tracing::error!(error = %e, "request failed");
        "the CA could not complete the request; see the server log".to_string()
    } else {
        e.to_string()
    };
    (class.into(), error(status_of(class), message))
}

async fn enroll(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let response = match read_body(&parts.headers, body).await {
        Err(r) => {
            app.metrics.enrolment(Outcome::BadRequest);
            r.into_response()
        }
        Ok(bytes) => match parse_json::<EnrollRequest>(&bytes) {
            Err(r) => {
                app.metrics.enrolment(Outcome::BadRequest);
                r.into_response()
            }
            Ok(req) => {
                match on_ca(&app, move |a| a.ca.enroll(&req.token, req.csr.as_bytes())).await {
                    Ok(leaf) => {
                        tracing::info!(name = %leaf.record.name, serial = %leaf.record.serial.to_hex(), "enrolled");
                        app.metrics.enrolment(Outcome::Ok);
                        issued(&app, &leaf)
                    }
                    Err(e) => {
                        let (outcome, r) = refused(&e);
                        app.metrics.enrolment(outcome);
                        r
                    }
                }
            }
        },
    };
    counted(&app, "enroll", response)
}

async fn renew(
    State(app): State<Arc<App>>,
    Extension(peer): Extension<PeerCerts>,
    request: Request,
) -> Response {
    let response = renew_inner(&app, peer, request).await;
    counted(&app, "renew", response)
}

async fn renew_inner(app: &Arc<App>, peer: PeerCerts, request: Request) -> Response {
    let Some(caller) = peer.0.as_ref().and_then(|chain| chain.first()).cloned() else {
        app.metrics.renewal(Outcome::Unauthenticated);
        return error(
            StatusCode::UNAUTHORIZED,
            "renewal needs mutual TLS: present your current certificate (issued by this CA) as the client certificate",
        );
    };
    let (parts, body) = request.into_parts();
    let bytes = match read_body(&parts.headers, body).await {
        Ok(b) => b,
        Err(r) => {
            app.metrics.renewal(Outcome::BadRequest);
            return r.into_response();
        }
    };
    let req = match parse_json::<RenewRequest>(&bytes) {
        Ok(r) => r,
        Err(r) => {
            app.metrics.renewal(Outcome::BadRequest);
            return r.into_response();
        }
    };
    let Some(_claim) = InFlight::claim(app, caller.as_ref()) else {
        app.metrics.renewal(Outcome::Conflict);
        return error(
            StatusCode::CONFLICT,
            "a renewal with this certificate is already in progress",
        );
    };
    let result = on_ca(app, move |a| {
        a.ca.renew_with_csr(caller.as_ref(), req.csr.as_bytes())
    })
    .await;
    match result {
        Ok(leaf) => {
            tracing::info!(name = %leaf.record.name, serial = %leaf.record.serial.to_hex(), "renewed");
            app.metrics.renewal(Outcome::Ok);
            issued(app, &leaf)
        }
        Err(e) => {
            let (outcome, r) = refused(&e);
            app.metrics.renewal(outcome);
            r
        }
    }
}

async fn bundle(State(app): State<Arc<App>>) -> Response {
    let response = ([(header::CONTENT_TYPE, PEM)], app.bundle_pem.clone()).into_response();
    counted(&app, "bundle", response)
}

async fn crl(State(app): State<Arc<App>>, request: Request) -> Response {
    let pem = match request.uri().query() {
        None => false,
        Some(q) => match q.split('&').find_map(|kv| kv.strip_prefix("format=")) {
            Some("pem") => true,
            Some("der") | None => false,
            Some(other) => {
                let r = error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown CRL format {other:?} (use der or pem)"),
                );
                return counted(&app, "crl", r);
            }
        },
    };
    let response = match app.crl.current(app.ca.clone(), &app.metrics).await {
        Ok(served) if pem => {
            ([(header::CONTENT_TYPE, PEM)], served.pem.to_string()).into_response()
        }
        Ok(served) => (
            [(header::CONTENT_TYPE, "application/pkix-crl")],
            served.der.to_vec(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serve the CRL");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the CA could not produce its CRL; see the server log",
            )
        }
    };
    counted(&app, "crl", response)
}

async fn health(State(app): State<Arc<App>>) -> Response {
    counted(
        &app,
        "healthz",
        ([(header::CONTENT_TYPE, TEXT)], "ok\n").into_response(),
    )
}

async fn not_found(State(app): State<Arc<App>>, request: Request) -> Response {
    let r = error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint {:?} (try {ENROLL_PATH}, {RENEW_PATH}, {BUNDLE_PATH}, {CRL_PATH}, {HEALTH_PATH})",
            request.uri().path()
        ),
    );
    counted(&app, "other", r)
}

async fn method_not_allowed(State(app): State<Arc<App>>, request: Request) -> Response {
    let allow = match request.uri().path() {
        ENROLL_PATH | RENEW_PATH => "POST",
        _ => "GET, HEAD",
    };
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on {} (use {allow})",
            request.method(),
            request.uri().path()
        ),
    );
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    counted(&app, "other", r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(len: Option<usize>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(n) = len {
            h.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn bodies_are_limited_before_they_are_read() {
        let ok = read_body(&headers(Some(2)), Body::from("{}"))
            .await
            .unwrap();
        assert_eq!(&ok[..], b"{}");
        // Declared too large: refused without reading.
        let r = read_body(&headers(Some(MAX_BODY_BYTES + 1)), Body::from("{}"))
            .await
            .unwrap_err();
        assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE);
        // Undeclared (chunked) and too long: refused at the limit.
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let r = read_body(&headers(None), Body::from(big))
            .await
            .unwrap_err();
        assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE);
        let exact = vec![b' '; MAX_BODY_BYTES];
        assert!(read_body(&headers(None), Body::from(exact)).await.is_ok());
    }

    #[test]
    fn json_errors_are_400_and_classes_map_to_statuses() {
        let r = parse_json::<EnrollRequest>(b"{").unwrap_err();
        assert_eq!(r.0, StatusCode::BAD_REQUEST);
        let r = parse_json::<RenewRequest>(br#"{"csr": "x", "more": 1}"#).unwrap_err();
        assert!(r.1.contains("more"), "{}", r.1);
        assert_eq!(
            status_of(ErrorClass::Unauthenticated),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status_of(ErrorClass::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ErrorClass::Conflict), StatusCode::CONFLICT);
    }
}
