//! The online CA (`minica serve`) as a source of credentials: renewing the
//! identity (`--renew-from`) and fetching the CRLs (`--crl-from`).
//!
//! Both tasks only write files (atomically, through `spawn_blocking`); the
//! route's credential watcher ([`crate::creds::watch_files`]) notices the new
//! files, validates them, and swaps the TLS config for new handshakes, so no
//! open connection is touched. When renewal fails the old certificate keeps
//! serving, and the task retries with exponential backoff.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use minica_enrol::client::Client;
use minica_enrol::identity::{write_identity, CurrentIdentity, Overwrite};
use minica_enrol::trust::CaUrl;
use minica_enrol::KeyChoice;
use minica_pki::atomic::{write_atomic, FileMode};
use minica_pki::pem;
use tokio::sync::watch;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::error::Error;
use crate::metrics::RouteMetrics;
use crate::settings::RouteSettings;

/// The first retry after a failure comes this soon: a CA restarting or a
/// network blip is usually over within a second.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Retries never wait longer than this, so a CA that comes back is used
/// within five minutes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A CRL is fetched again at half the time left before its nextUpdate, but
/// never sooner than this after the last fetch (no hammering of the CA by a
/// CRL about to expire)...
pub const CRL_MIN_REFRESH: Duration = Duration::from_secs(30);
/// ... and never later than this, so that a revocation published with a new
/// CRL reaches the sidecar within the hour even when nextUpdate is days away.
pub const CRL_MAX_REFRESH: Duration = Duration::from_secs(3600);
/// The longest single sleep: long waits are cut into steps and recomputed,
/// which keeps the schedule right across clock changes and suspends.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Renewal happens at this fraction of the certificate's lifetime.
const RENEW_AT: f64 = 2.0 / 3.0;
/// ... plus or minus this fraction of the lifetime, so that a fleet issued
/// at the same time does not renew at the same second.
const JITTER: f64 = 0.05;

/// The wait before retry number `failures` (1 s, 2 s, 4 s, ... 5 min).
pub fn backoff(failures: u32) -> Duration {
    let secs = MIN_BACKOFF
        .as_secs()
        .saturating_mul(1u64 << failures.saturating_sub(1).min(20));
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// When a certificate valid from `not_before` to `not_after` (unix seconds)
/// is renewed: two thirds of its lifetime, moved by `jitter` (in -1..=1)
/// times 5% of the lifetime.
pub fn renewal_due(not_before: i64, not_after: i64, jitter: f64) -> i64 {
    let lifetime = (not_after - not_before).max(0) as f64;
    let offset = lifetime * (RENEW_AT + JITTER * jitter.clamp(-1.0, 1.0));
    not_before + offset.round() as i64
}

/// How long to wait before fetching the CRLs again, given their earliest
/// nextUpdate (unix seconds) and the time now.
pub fn crl_refresh_delay(now: i64, next_update: Option<i64>) -> Duration {
    match next_update {
        Some(next) if next > now => {
            Duration::from_secs(u64::try_from((next - now) / 2).unwrap_or(0))
                .clamp(CRL_MIN_REFRESH, CRL_MAX_REFRESH)
        }
        Some(_) => CRL_MIN_REFRESH,
        None => CRL_MAX_REFRESH,
    }
}

/// A number in -1..=1 that is fixed for one certificate (and one process).
fn jitter_for(salt: u64, serial: &str) -> f64 {
    let mut h = DefaultHasher::new();
    (salt, serial).hash(&mut h);
    (h.finish() as f64 / u64::MAX as f64) * 2.0 - 1.0
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Sleeps `d` (at most [`MAX_SLEEP`]); true when asked to stop meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d.min(MAX_SLEEP)) => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// One identity directory renewed from one CA, for the routes that use it.
#[derive(Debug, Clone)]
pub struct RenewJob {
    /// The identity directory.
    pub dir: PathBuf,
    /// The CA.
    pub url: CaUrl,
    /// The routes serving this identity (for metrics and logs).
    pub routes: Vec<Arc<RouteMetrics>>,
}

/// One CRL file fetched from one CA.
#[derive(Debug, Clone)]
pub struct CrlJob {
    /// Where the CRLs are written (the route's `crl`).
    pub path: PathBuf,
    /// The CA bundle the CA's server certificate must chain to.
    pub ca: PathBuf,
    /// The CA.
    pub url: CaUrl,
    /// The routes using this CRL file.
    pub routes: Vec<Arc<RouteMetrics>>,
}

/// The renewal and CRL jobs of a set of routes, one per distinct directory
/// or file (two routes sharing an identity renew it once).
pub fn jobs(routes: &[(Arc<RouteSettings>, Arc<RouteMetrics>)]) -> (Vec<RenewJob>, Vec<CrlJob>) {
    let mut renew: Vec<RenewJob> = Vec::new();
    let mut crl: Vec<CrlJob> = Vec::new();
    for (s, m) in routes {
        if let (Some(url), Some(dir)) = (&s.renew_from, &s.identity) {
            match renew.iter_mut().find(|j| &j.dir == dir) {
                Some(j) => j.routes.push(m.clone()),
                None => renew.push(RenewJob {
                    dir: dir.clone(),
                    url: url.clone(),
                    routes: vec![m.clone()],
                }),
            }
        }
        if let (Some(url), Some(path)) = (&s.crl_from, &s.files.crl) {
            match crl.iter_mut().find(|j| &j.path == path) {
                Some(j) => j.routes.push(m.clone()),
                None => crl.push(CrlJob {
                    path: path.clone(),
                    ca: s.files.ca.clone(),
                    url: url.clone(),
                    routes: vec![m.clone()],
                }),
            }
        }
    }
    (renew, crl)
}

fn names(routes: &[Arc<RouteMetrics>]) -> String {
    routes
        .iter()
        .map(|r| r.route())
        .collect::<Vec<_>>()
        .join(",")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, minica_enrol::Error> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

/// Renews the job's identity at two thirds of its lifetime (with jitter),
/// retrying with backoff on failure, until `stop` turns true.
pub async fn renew_loop(job: RenewJob, mut stop: watch::Receiver<bool>) {
    let salt: u64 = rand::random();
    let routes = names(&job.routes);
    let mut failures = 0u32;
    loop {
        let dir = job.dir.clone();
        let current = match blocking(move || CurrentIdentity::load(&dir)).await {
            Ok(c) => c,
            Err(error) => {
                failures += 1;
                let retry = backoff(failures);
                tracing::error!(routes = %routes, identity = %job.dir.display(), %error,
                    retry_in_s = retry.as_secs(), "renewal: cannot read the identity");
                if sleep_or_stop(retry, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let leaf = &current.leaf;
        if failures == 0 {
            let due = renewal_due(
                leaf.not_before,
                leaf.not_after,
                jitter_for(salt, &leaf.serial),
            );
            let now = unix_now();
            if due > now {
                let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0));
                tracing::debug!(routes = %routes, serial = %leaf.serial, due = %rfc3339(due),
                    "renewal scheduled");
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
                // Re-read: the files may have been replaced meanwhile.
                continue;
            }
        }
        match minica_enrol::renew(&job.url, &current, KeyChoice::New).await {
            Ok(obtained) => {
                let dir = job.dir.clone();
                let new = obtained.issued.leaf.clone();
                let written = blocking(move || {
                    write_identity(
                        &dir,
                        &obtained.issued,
                        obtained.key_pem.as_deref().map(String::as_str),
                        Overwrite::Replace,
                    )
                })
                .await;
                match written {
                    Ok(()) => {
                        failures = 0;
                        job.routes.iter().for_each(|r| r.renewal(true));
                        tracing::info!(routes = %routes, identity = %job.dir.display(),
                            old_serial = %leaf.serial, serial = %new.serial,
                            not_after = %rfc3339(new.not_after), "certificate renewed");
                        continue;
                    }
                    Err(error) => {
                        failures += 1;
                        job.routes.iter().for_each(|r| r.renewal(false));
                        tracing::error!(routes = %routes, identity = %job.dir.display(), %error,
                            "renewal: cannot write the new files; keeping the current ones");
                    }
                }
            }
            Err(error) => {
                failures += 1;
                job.routes.iter().for_each(|r| r.renewal(false));
                let expired = leaf.not_after <= unix_now();
                if expired {
                    tracing::error!(routes = %routes, serial = %leaf.serial, %error,
                        retry_in_s = backoff(failures).as_secs(),
                        "renewal failed and the certificate has expired: re-enrol with a token");
                } else {
                    tracing::warn!(routes = %routes, serial = %leaf.serial, %error,
                        retry_in_s = backoff(failures).as_secs(),
                        not_after = %rfc3339(leaf.not_after),
                        "renewal failed; the current certificate keeps serving");
                }
            }
        }
        if sleep_or_stop(backoff(failures), &mut stop).await {
            return;
        }
    }
}

/// Fetches the CRLs once and writes them to the job's file when they
/// changed. Returns their earliest nextUpdate.
pub async fn fetch_crl(job: &CrlJob) -> Result<Option<i64>, Error> {
    let ca = job.ca.clone();
    let roots = tokio::task::spawn_blocking(move || pem::load_certs(&ca))
        .await
        .map_err(|e| Error::Runtime {
            what: "CRL fetch task",
            source: std::io::Error::other(e),
        })??;
    let fetch_error = |source| Error::Fetch {
        what: "CRL",
        source,
    };
    let client = Client::new(job.url.clone(), roots, None).map_err(fetch_error)?;
    let body = client.crl_pem().await.map_err(fetch_error)?;
    let next = next_update(&job.path, &body)?;
    let path = job.path.clone();
    tokio::task::spawn_blocking(move || {
        if std::fs::read(&path).ok().as_deref() != Some(body.as_slice()) {
            write_atomic(&path, &body, FileMode::Public)?;
        }
        Ok::<_, Error>(())
    })
    .await
    .map_err(|e| Error::Runtime {
        what: "CRL write task",
        source: std::io::Error::other(e),
    })??;
    Ok(next)
}

/// Parses PEM CRLs (refusing anything else) and returns their earliest
/// nextUpdate; `path` names the source in errors.
fn next_update(path: &Path, bytes: &[u8]) -> Result<Option<i64>, Error> {
    let crls = pem::parse_crls(path, bytes)?;
    let mut next: Option<i64> = None;
    for der in &crls {
        let (_, crl) = CertificateRevocationList::from_der(der).map_err(|source| Error::X509 {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(t) = crl.next_update() {
            let t = t.timestamp();
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    Ok(next)
}

/// Fetches the CRLs at start (blocking: before the runtime starts). A
/// failure is an error only when there is no CRL file to fall back on.
pub fn initial_crl_fetch(route: &RouteSettings) -> Result<(), Error> {
    let (Some(url), Some(path)) = (&route.crl_from, &route.files.crl) else {
        return Ok(());
    };
    let job = CrlJob {
        path: path.clone(),
        ca: route.files.ca.clone(),
        url: url.clone(),
        routes: Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime {
            what: "cannot start the runtime for the first CRL fetch",
            source,
        })?;
    match rt.block_on(fetch_crl(&job)) {
        Ok(_) => Ok(()),
        Err(e) if path.exists() => {
            tracing::warn!(route = %route.name, error = %e, crl = %path.display(),
                "cannot fetch the CRLs at start; using the file already there");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Fetches the CRLs again at half the time left before their nextUpdate
/// (30 s to 1 h), and at once on SIGHUP (`hup` changes), retrying with
/// backoff on failure, until `stop`.
pub async fn crl_loop(job: CrlJob, mut stop: watch::Receiver<bool>, mut hup: watch::Receiver<u64>) {
    let routes = names(&job.routes);
    let path = job.path.clone();
    let mut next = tokio::task::spawn_blocking(move || {
        std::fs::read(&path)
            .ok()
            .and_then(|b| next_update(&path, &b).ok())
            .flatten()
    })
    .await
    .ok()
    .flatten();
    let mut failures = 0u32;
    loop {
        let wait = if failures > 0 {
            backoff(failures)
        } else {
            crl_refresh_delay(unix_now(), next)
        };
        tokio::select! {
            stopped = sleep_or_stop(wait, &mut stop) => if stopped { return },
            changed = hup.changed() => if changed.is_err() { return },
        }
        match fetch_crl(&job).await {
            Ok(n) => {
                failures = 0;
                next = n;
                job.routes.iter().for_each(|r| r.crl_fetch(true));
                tracing::debug!(routes = %routes, crl = %job.path.display(), "CRLs fetched");
            }
            Err(error) => {
                failures += 1;
                job.routes.iter().for_each(|r| r.crl_fetch(false));
                tracing::warn!(routes = %routes, %error, retry_in_s = backoff(failures).as_secs(),
                    "CRL fetch failed; the current CRLs stay in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(0), MIN_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn renewal_is_due_at_two_thirds_with_bounded_jitter() {
        assert_eq!(renewal_due(1000, 1900, 0.0), 1600);
        assert_eq!(renewal_due(1000, 1900, 1.0), 1645);
        assert_eq!(renewal_due(1000, 1900, -1.0), 1555);
        assert_eq!(renewal_due(1000, 1900, 7.0), 1645);
        assert_eq!(renewal_due(0, 60, 0.0), 40);
        // A certificate with no lifetime is due at once.
        assert_eq!(renewal_due(5, 5, 0.5), 5);
        for serial in ["01", "02", "ab:cd", "ffff"] {
            let j = jitter_for(42, serial);
            assert!((-1.0..=1.0).contains(&j), "{j}");
            assert_eq!(j, jitter_for(42, serial), "stable per certificate");
        }
        assert_ne!(jitter_for(1, "01"), jitter_for(1, "02"));
    }

    #[test]
    fn crl_refresh_is_half_the_time_left_within_bounds() {
        assert_eq!(crl_refresh_delay(0, Some(600)), Duration::from_secs(300));
        assert_eq!(crl_refresh_delay(0, Some(20)), CRL_MIN_REFRESH);
        assert_eq!(crl_refresh_delay(100, Some(50)), CRL_MIN_REFRESH);
        assert_eq!(crl_refresh_delay(0, Some(7 * 86_400)), CRL_MAX_REFRESH);
        assert_eq!(crl_refresh_delay(0, None), CRL_MAX_REFRESH);
    }

    #[test]
    fn next_update_refuses_what_is_not_a_crl() {
        let err = next_update(Path::new("x.pem"), b"garbage").unwrap_err();
        assert!(err.to_string().contains("x.pem"), "{err}");
    }
}
