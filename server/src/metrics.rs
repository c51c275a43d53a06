//! The server's metrics, rendered in the Prometheus text format on the
//! admin listener (`--admin ADDR`, `GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use minica_ca::enroll::ErrorClass;

/// The result label of enrolments and renewals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    BadRequest,
    Unauthenticated,
    Forbidden,
    Conflict,
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::BadRequest,
        Outcome::Unauthenticated,
        Outcome::Forbidden,
        Outcome::Conflict,
        Outcome::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::BadRequest => "bad_request",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Forbidden => "forbidden",
            Outcome::Conflict => "conflict",
            Outcome::Error => "error",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

impl From<ErrorClass> for Outcome {
    fn from(class: ErrorClass) -> Self {
        match class {
            ErrorClass::BadRequest => Outcome::BadRequest,
            ErrorClass::Unauthenticated => Outcome::Unauthenticated,
            ErrorClass::Forbidden => Outcome::Forbidden,
            ErrorClass::Conflict => Outcome::Conflict,
            ErrorClass::Internal => Outcome::Error,
        }
    }
}

/// Upper bounds (seconds) of the issuance latency histogram.
const ISSUANCE_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    enrolments: [AtomicU64; Outcome::ALL.len()],
    renewals: [AtomicU64; Outcome::ALL.len()],
    buckets: [AtomicU64; ISSUANCE_BUCKETS.len()],
    issuance_count: AtomicU64,
    issuance_micros: AtomicU64,
    server_cert_not_after: AtomicI64,
    crls_signed: AtomicU64,
    handshake_failures: AtomicU64,
}

impl Metrics {
    /// Counts an answered request.
    pub(crate) fn request(&self, endpoint: &'static str, status: u16) {
        let mut map = match self.requests.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map.entry((endpoint, status)).or_insert(0) += 1;
    }

    pub(crate) fn enrolment(&self, outcome: Outcome) {
        self.enrolments[outcome.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn renewal(&self, outcome: Outcome) {
        self.renewals[outcome.index()].fetch_add(1, Relaxed);
    }

    /// Records how long a CA operation (checks, signing, ledger commit) took.
    pub(crate) fn issuance(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in ISSUANCE_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.issuance_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.issuance_micros.fetch_add(micros, Relaxed);
    }

    pub(crate) fn server_cert(&self, not_after: time::OffsetDateTime) {
        self.server_cert_not_after
            .store(not_after.unix_timestamp(), Relaxed);
    }

    pub(crate) fn crl_signed(&self) {
        self.crls_signed.fetch_add(1, Relaxed);
    }

    pub(crate) fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP minica_serve_requests_total HTTP requests answered, by endpoint and status code.\n");
        out.push_str("# TYPE minica_serve_requests_total counter\n");
        {
            let map = match self.requests.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            for ((endpoint, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "minica_serve_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        for (metric, help, counters) in [
            (
                "minica_serve_enrolments_total",
                "Enrolments (POST /v1/enroll), by result.",
                &self.enrolments,
            ),
            (
                "minica_serve_renewals_total",
                "Renewals over mutual TLS (POST /v1/renew), by result.",
                &self.renewals,
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for outcome in Outcome::ALL {
                let _ = writeln!(
                    out,
                    "{metric}{{result=\"{}\"}} {}",
                    outcome.as_str(),
                    counters[outcome.index()].load(Relaxed)
                );
            }
        }
        out.push_str("# HELP minica_serve_issuance_seconds Time to check, sign and record a certificate (enrol or renew).\n");
        out.push_str("# TYPE minica_serve_issuance_seconds histogram\n");
        for (bound, bucket) in ISSUANCE_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "minica_serve_issuance_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.issuance_count.load(Relaxed);
        let _ = writeln!(
            out,
            "minica_serve_issuance_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "minica_serve_issuance_seconds_sum {}",
            self.issuance_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "minica_serve_issuance_seconds_count {count}");
        out.push_str("# HELP minica_serve_server_cert_expiry_timestamp_seconds notAfter of the HTTPS certificate in use (Unix time).\n");
        out.push_str("# TYPE minica_serve_server_cert_expiry_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "minica_serve_server_cert_expiry_timestamp_seconds {}",
            self.server_cert_not_after.load(Relaxed)
        );
        out.push_str("# HELP minica_serve_crls_signed_total CRL sets signed for GET /v1/crl.\n");
        out.push_str("# TYPE minica_serve_crls_signed_total counter\n");
        let _ = writeln!(
            out,
            "minica_serve_crls_signed_total {}",
            self.crls_signed.load(Relaxed)
        );
        out.push_str("# HELP minica_serve_tls_handshake_failures_total TLS handshakes that failed or timed out.\n");
        out.push_str("# TYPE minica_serve_tls_handshake_failures_total counter\n");
        let _ = writeln!(
            out,
            "minica_serve_tls_handshake_failures_total {}",
            self.handshake_failures.load(Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::default();
        m.request("enroll", 200);
        m.request("enroll", 200);
        m.request("other", 404);
        m.enrolment(Outcome::Ok);
        m.renewal(Outcome::Forbidden);
        m.issuance(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("minica_serve_requests_total{endpoint=\"enroll\",status=\"200\"} 2"));
        assert!(text.contains("minica_serve_enrolments_total{result=\"ok\"} 1"));
        assert!(text.contains("minica_serve_renewals_total{result=\"forbidden\"} 1"));
        assert!(text.contains("minica_serve_issuance_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("minica_serve_issuance_seconds_count 1"));
    }
}
