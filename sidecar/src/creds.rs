//! A route's credentials: read the PEM files, validate them into a rustls
//! config, publish it over a `tokio::sync::watch` channel, and reload it when
//! a file changes or SIGHUP arrives. A reload that fails keeps the previous
//! credentials in use and logs why.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use minica_pki::pem;
use rustls::{ClientConfig, ServerConfig};
use tokio::sync::watch;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::metrics::RouteMetrics;
use crate::settings::{Direction, RouteSettings};
use crate::tls::{self, Material};

/// How often the files are polled for changes. Changes are picked up within
/// this (plus a rebuild), well inside the promised 2 s.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// After a reload fails, the files are read once more after this long: a
/// writer renaming several files in turn is done well within it.
const SETTLE: Duration = Duration::from_millis(200);

/// The raw bytes of a route's files, to notice changes. The key file's
/// bytes are wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct FileSet {
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
    ca: Vec<u8>,
    crl: Option<Vec<u8>>,
}

impl std::fmt::Debug for FileSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileSet { [elided] }")
    }
}

/// The TLS side of a route, ready for new handshakes.
#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// Inbound: we are the TLS server.
    Server(Arc<ServerConfig>),
    /// Outbound: we are the TLS client.
    Client(Arc<ClientConfig>),
}

/// Validated credentials of one route.
#[derive(Debug, Clone)]
pub struct Creds {
    /// The rustls config built from them.
    pub tls: TlsConfig,
    /// Our leaf's serial, hex.
    pub serial: String,
    /// Our leaf's notBefore (unix seconds).
    pub not_before: i64,
    /// Our leaf's notAfter (unix seconds).
    pub not_after: i64,
    /// The earliest nextUpdate among the CRLs (unix seconds).
    pub crl_next_update: Option<i64>,
}

/// Reads the route's files (blocking).
pub fn read_files(route: &RouteSettings) -> Result<FileSet, Error> {
    let f = &route.files;
    Ok(FileSet {
        cert: pem::read_file(&f.cert)?,
        key: pem::read_secret_file(&f.key)?,
        ca: pem::read_file(&f.ca)?,
        crl: f.crl.as_deref().map(pem::read_file).transpose()?,
    })
}

fn x509_error(
    path: &Path,
) -> impl Fn(x509_parser::nom::Err<x509_parser::error::X509Error>) -> Error + '_ {
    move |source| Error::X509 {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses and validates the files into credentials (CPU only, no I/O).
pub fn build(route: &RouteSettings, set: &FileSet) -> Result<Creds, Error> {
    let f = &route.files;
    let chain = pem::parse_certs(&f.cert, &set.cert)?;
    let key = pem::parse_private_key(&f.key, &set.key)?;
    let roots = pem::parse_certs(&f.ca, &set.ca)?;
    let crls = match (&f.crl, &set.crl) {
        (Some(path), Some(bytes)) => pem::parse_crls(path, bytes)?,
        _ => Vec::new(),
    };
    let leaf = chain.first().ok_or_else(|| Error::Material {
        path: f.cert.clone(),
        what: "certificate chain",
        source: rustls::Error::NoCertificatesPresented,
    })?;
    let (_, parsed) = X509Certificate::from_der(leaf).map_err(x509_error(&f.cert))?;
    let serial = hex_serial(parsed.raw_serial());
    let not_before = parsed.validity().not_before.timestamp();
    let not_after = parsed.validity().not_after.timestamp();
    let mut crl_next_update = None;
    if let Some(path) = &f.crl {
        for crl in &crls {
            let (_, parsed) = CertificateRevocationList::from_der(crl).map_err(x509_error(path))?;
            if let Some(next) = parsed.next_update() {
                let t = next.timestamp();
                crl_next_update = Some(crl_next_update.map_or(t, |c: i64| c.min(t)));
            }
        }
    }
    let material = Material {
        chain,
        key,
        roots,
        crls,
    };
    let allow: Arc<[_]> = route.allow.clone().into();
    let tls = match route.direction {
        Direction::Inbound => {
            TlsConfig::Server(tls::server_config(f, material, route.versions, allow)?)
        }
        Direction::Outbound => {
            TlsConfig::Client(tls::client_config(f, material, route.versions, allow)?)
        }
    };
    Ok(Creds {
        tls,
        serial,
        not_before,
        not_after,
        crl_next_update,
    })
}

fn hex_serial(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Creds {
    /// Logs a warning when the CRLs are past their nextUpdate: they still
    /// apply (a stale list is better than none), but the CA should have
    /// published a newer one.
    pub fn warn_if_stale(&self, route: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if let Some(next) = self.crl_next_update.filter(|n| *n < now) {
            tracing::warn!(
                route,
                crl_next_update = next,
                "the CRL is past its nextUpdate: publish a new one (it is still enforced)"
            );
        }
        if self.not_after <= now {
            tracing::error!(route, serial = %self.serial, "our certificate has expired: renew it");
        }
    }
}

/// Reads and validates a route's credentials (blocking; call before the
/// runtime starts or from `spawn_blocking`).
pub fn load(route: &RouteSettings) -> Result<(FileSet, Creds), Error> {
    let set = read_files(route)?;
    let creds = build(route, &set)?;
    Ok((set, creds))
}

/// Watches a route's files and SIGHUP; publishes new credentials on `tx`.
/// Runs until every receiver is gone.
pub async fn watch_files(
    route: Arc<RouteSettings>,
    initial: FileSet,
    tx: watch::Sender<Arc<Creds>>,
    mut sighup: watch::Receiver<u64>,
    metrics: Arc<RouteMetrics>,
) {
    let mut current = initial;
    // The last content we tried and failed with, so one bad file logs once.
    let mut last_failed: Option<FileSet> = None;
    let mut last_read_error: Option<String> = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            changed = sighup.changed() => {
                if changed.is_err() { return; }
                true
            }
            _ = tx.closed() => return,
        };
        let r = route.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let set = read_files(&r)?;
            Ok::<_, Error>(set)
        })
        .await;
        let set = match outcome {
            Ok(Ok(set)) => {
                last_read_error = None;
                set
            }
            Ok(Err(e)) => {
                let msg = format!("{e}");
                if forced || last_read_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!(route = %route.name, error = %msg,
                        "reload failed: cannot read credentials; keeping the previous ones");
                    metrics.reload(false);
                }
                last_read_error = Some(msg);
                continue;
            }
            Err(_) => continue,
        };
        if !forced && (set == current || last_failed.as_ref() == Some(&set)) {
            continue;
        }
        let r = route.clone();
        let s = set.clone();
        match tokio::task::spawn_blocking(move || build(&r, &s)).await {
            Ok(Ok(creds)) => {
                tracing::info!(route = %route.name, serial = %creds.serial,
                    not_after = creds.not_after, "credentials reloaded");
                metrics.set_creds(&creds);
                metrics.reload(true);
                creds.warn_if_stale(&route.name);
                current = set;
                last_failed = None;
                if tx.send(Arc::new(creds)).is_err() {
                    return;
                }
            }
            Ok(Err(e)) => {
                // A writer may be between renames (a renewal replaces key.pem
                // before chain.pem): if the files change again right away,
                // judge the next set instead of logging a failure.
                tokio::time::sleep(SETTLE).await;
                let r = route.clone();
                if let Ok(Ok(again)) = tokio::task::spawn_blocking(move || read_files(&r)).await {
                    if again != set {
                        continue;
                    }
                }
                tracing::error!(route = %route.name, error = %e,
                    "reload failed: new credentials are invalid; keeping the previous ones");
                metrics.reload(false);
                last_failed = Some(set);
            }
            Err(_) => {}
        }
    }
}
