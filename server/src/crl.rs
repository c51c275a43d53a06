//! The CRLs served by `GET /v1/crl`, cached.
//!
//! A revocation may be made by another process (`minica revoke` through the
//! store socket, or another server on the same database), so the cache
//! cannot be told about it. Instead a request that finds the last check
//! older than [`RECHECK`] reads the revoked serials of every level from the
//! store (cheap: an index lookup) and signs a new CRL set, with new CRL
//! numbers, only when that set changed or the cached CRLs passed half
//! their validity. A revocation therefore reaches the served CRL within
//! [`RECHECK`] plus one request's work (the contract is 2 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use minica_ca::enroll::RevocationState;
use minica_ca::Ca;

use crate::metrics::Metrics;

/// How old the last look at the store may be when a CRL is served.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// The CRLs as served.
#[derive(Debug, Clone)]
pub(crate) struct ServedCrl {
    /// The current issuing intermediate's CRL, DER.
    pub(crate) der: Arc<Vec<u8>>,
    /// Every level's CRL, PEM (intermediates first, the root's last).
    pub(crate) pem: Arc<String>,
}

#[derive(Debug)]
struct Cached {
    state: RevocationState,
    crl: ServedCrl,
    checked: Instant,
    signed: Instant,
}

/// The cache (one per server).
#[derive(Debug)]
pub(crate) struct CrlCache {
    inner: tokio::sync::Mutex<Option<Cached>>,
    validity: Duration,
}

/// Why no CRL could be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CrlFailure {
    #[error(transparent)]
    Ca(#[from] minica_ca::Error),
    #[error("no issuing CA publishes a CRL")]
    NoIssuingCrl,
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl CrlCache {
    /// A cache whose CRLs are valid `validity` (nextUpdate - now).
    pub(crate) fn new(validity: Duration) -> Self {
        CrlCache {
            inner: tokio::sync::Mutex::new(None),
            validity,
        }
    }

    /// The CRLs to serve now (see the module docs).
    pub(crate) async fn current(
        &self,
        ca: Arc<Ca>,
        metrics: &Metrics,
    ) -> Result<ServedCrl, CrlFailure> {
        let mut guard = self.inner.lock().await;
        if let Some(cached) = guard.as_ref() {
            if cached.checked.elapsed() < RECHECK {
                return Ok(cached.crl.clone());
            }
        }
        let previous = guard
            .as_ref()
            .map(|c| (c.state.clone(), c.signed.elapsed()));
        let validity = self.validity;
        let (state, fresh) = tokio::task::spawn_blocking(move || {
            let state = ca.revocation_state()?;
            let stale = match &previous {
                Some((old, age)) => *old != state || *age >= validity / 2,
                None => true,
            };
            let set = if stale {
                Some(ca.build_crls(validity)?)
            } else {
                None
            };
            Ok::<_, minica_ca::Error>((state, set))
        })
        .await??;
        let now = Instant::now();
        match (fresh, guard.as_mut()) {
            (Some(set), _) => {
                let der = set
                    .issuing()
                    .map(|c| c.crl.der().to_vec())
                    .ok_or(CrlFailure::NoIssuingCrl)?;
                metrics.crl_signed();
                let crl = ServedCrl {
                    der: Arc::new(der),
                    pem: Arc::new(set.to_pem()),
                };
                *guard = Some(Cached {
                    state,
                    crl: crl.clone(),
                    checked: now,
                    signed: now,
                });
                Ok(crl)
            }
            (None, Some(cached)) => {
                cached.checked = now;
                Ok(cached.crl.clone())
            }
            (None, None) => Err(CrlFailure::NoIssuingCrl),
        }
    }
}
