//! Counters and gauges per route, rendered in the Prometheus text format.
//! Lock-free atomics; the set of routes is fixed at start.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::creds::Creds;
use crate::reason::FailureReason;
use crate::settings::Direction;

/// How a connection ended, as the `result` label of
/// `minica_sidecar_connections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnResult {
    /// Both sides finished cleanly.
    Closed,
    /// A TLS peer hung up without close_notify.
    Truncated,
    /// No bytes either way for `--idle-timeout`.
    IdleTimeout,
    /// An I/O error (reset, broken pipe) after the handshake.
    Error,
    /// The TLS handshake failed (see the failures counter for why).
    HandshakeFailed,
    /// The upstream could not be reached.
    UpstreamFailed,
    /// Refused at once: `--max-connections` reached.
    Rejected,
    /// Cut when the drain timeout ran out.
    Drained,
}

impl ConnResult {
    /// Every result, in label order.
    pub const ALL: [ConnResult; 8] = [
        ConnResult::Closed,
        ConnResult::Truncated,
        ConnResult::IdleTimeout,
        ConnResult::Error,
        ConnResult::HandshakeFailed,
        ConnResult::UpstreamFailed,
        ConnResult::Rejected,
        ConnResult::Drained,
    ];

    /// The metric label (also used in the connection log line).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnResult::Closed => "closed",
            ConnResult::Truncated => "truncated",
            ConnResult::IdleTimeout => "idle_timeout",
            ConnResult::Error => "error",
            ConnResult::HandshakeFailed => "handshake_failed",
            ConnResult::UpstreamFailed => "upstream_failed",
            ConnResult::Rejected => "rejected",
            ConnResult::Drained => "drained",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Upper bounds (seconds) of the handshake duration histogram.
pub const HANDSHAKE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

const NONE: i64 = i64::MIN;

/// The metrics of one route.
#[derive(Debug)]
pub struct RouteMetrics {
    route: String,
    direction: Direction,
    connections: [AtomicU64; ConnResult::ALL.len()],
    failures: [AtomicU64; FailureReason::ALL.len()],
    active: AtomicI64,
    buckets: [AtomicU64; HANDSHAKE_BUCKETS.len()],
    handshake_count: AtomicU64,
    handshake_micros: AtomicU64,
    bytes_to_upstream: AtomicU64,
    bytes_from_upstream: AtomicU64,
    cert_not_before: AtomicI64,
    cert_not_after: AtomicI64,
    crl_next_update: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    renewals_ok: AtomicU64,
    renewals_failed: AtomicU64,
    crl_fetches_ok: AtomicU64,
    crl_fetches_failed: AtomicU64,
    online: AtomicU64,
}

/// `online` bits: which online counters this route renders.
const RENEWS: u64 = 1;
const FETCHES_CRL: u64 = 2;

impl RouteMetrics {
    /// Fresh metrics for a route.
    pub fn new(route: &str, direction: Direction) -> Self {
        RouteMetrics {
            route: route.to_string(),
            direction,
            connections: Default::default(),
            failures: Default::default(),
            active: AtomicI64::new(0),
            buckets: Default::default(),
            handshake_count: AtomicU64::new(0),
            handshake_micros: AtomicU64::new(0),
            bytes_to_upstream: AtomicU64::new(0),
            bytes_from_upstream: AtomicU64::new(0),
            cert_not_before: AtomicI64::new(NONE),
            cert_not_after: AtomicI64::new(NONE),
            crl_next_update: AtomicI64::new(NONE),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            renewals_ok: AtomicU64::new(0),
            renewals_failed: AtomicU64::new(0),
            crl_fetches_ok: AtomicU64::new(0),
            crl_fetches_failed: AtomicU64::new(0),
            online: AtomicU64::new(0),
        }
    }

    /// Counts a finished (or refused) connection.
    pub fn connection(&self, result: ConnResult) {
        self.connections[result.index()].fetch_add(1, Relaxed);
    }

    /// Counts a failed handshake.
    pub fn handshake_failed(&self, reason: FailureReason) {
        self.failures[reason.index()].fetch_add(1, Relaxed);
    }

    /// Records how long a successful handshake took.
    pub fn handshake_done(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in HANDSHAKE_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.handshake_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.handshake_micros.fetch_add(micros, Relaxed);
    }

    /// One more (`+1`) or one fewer (`-1`) open connection.
    pub fn active_add(&self, delta: i64) {
        self.active.fetch_add(delta, Relaxed);
    }

    /// The byte counter towards the upstream.
    pub fn bytes_to_upstream(&self) -> &AtomicU64 {
        &self.bytes_to_upstream
    }

    /// The byte counter from the upstream.
    pub fn bytes_from_upstream(&self) -> &AtomicU64 {
        &self.bytes_from_upstream
    }

    /// Records the validity of the credentials now in use.
    pub fn set_creds(&self, creds: &Creds) {
        self.cert_not_before.store(creds.not_before, Relaxed);
        self.cert_not_after.store(creds.not_after, Relaxed);
        self.crl_next_update
            .store(creds.crl_next_update.unwrap_or(NONE), Relaxed);
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        }
        .fetch_add(1, Relaxed);
    }

    /// Marks the route as renewed from (`renews`) or fetching CRLs from
    /// (`fetches_crl`) an online CA, so its counters are rendered (at 0
    /// before the first attempt).
    pub fn set_online(&self, renews: bool, fetches_crl: bool) {
        let bits = if renews { RENEWS } else { 0 } | if fetches_crl { FETCHES_CRL } else { 0 };
        self.online.fetch_or(bits, Relaxed);
    }

    /// Counts a renewal attempt (`--renew-from`).
    pub fn renewal(&self, ok: bool) {
        self.online.fetch_or(RENEWS, Relaxed);
        if ok {
            &self.renewals_ok
        } else {
            &self.renewals_failed
        }
        .fetch_add(1, Relaxed);
    }

    /// Counts a CRL fetch (`--crl-from`).
    pub fn crl_fetch(&self, ok: bool) {
        self.online.fetch_or(FETCHES_CRL, Relaxed);
        if ok {
            &self.crl_fetches_ok
        } else {
            &self.crl_fetches_failed
        }
        .fetch_add(1, Relaxed);
    }

    /// True when our certificate is valid at `now` (unix seconds).
    pub fn cert_valid_at(&self, now: i64) -> bool {
        let nb = self.cert_not_before.load(Relaxed);
        let na = self.cert_not_after.load(Relaxed);
        nb != NONE && nb <= now && now < na
    }

    /// The route name.
    pub fn route(&self) -> &str {
        &self.route
    }
}

/// Every route's metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    routes: Vec<Arc<RouteMetrics>>,
}

impl Metrics {
    /// Metrics over these routes.
    pub fn new(routes: Vec<Arc<RouteMetrics>>) -> Self {
        Metrics { routes }
    }

    /// The routes.
    pub fn routes(&self) -> &[Arc<RouteMetrics>] {
        &self.routes
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let labels = |r: &RouteMetrics| {
            format!(
                "route=\"{}\",direction=\"{}\"",
                escape(&r.route),
                r.direction.as_str()
            )
        };
        header(
            &mut out,
            "minica_sidecar_connections_total",
            "counter",
            "Connections finished or refused, by how they ended.",
        );
        for r in &self.routes {
            for res in ConnResult::ALL {
                let v = r.connections[res.index()].load(Relaxed);
                let _ = writeln!(
                    out,
                    "minica_sidecar_connections_total{{{},result=\"{}\"}} {v}",
                    labels(r),
                    res.as_str()
                );
            }
        }
        header(
            &mut out,
            "minica_sidecar_active_connections",
            "gauge",
            "Connections open now.",
        );
        for r in &self.routes {
            let _ = writeln!(
                out,
                "minica_sidecar_active_connections{{{}}} {}",
                labels(r),
                r.active.load(Relaxed)
            );
        }
        header(
            &mut out,
            "minica_sidecar_handshake_failures_total",
            "counter",
            "TLS handshakes that failed, by reason.",
        );
        for r in &self.routes {
            for reason in FailureReason::ALL {
                let v = r.failures[reason.index()].load(Relaxed);
                let _ = writeln!(
                    out,
                    "minica_sidecar_handshake_failures_total{{{},reason=\"{}\"}} {v}",
                    labels(r),
                    reason.as_str()
                );
            }
        }
        header(
            &mut out,
            "minica_sidecar_handshake_duration_seconds",
            "histogram",
            "Duration of successful TLS handshakes.",
        );
        for r in &self.routes {
            let l = labels(r);
            for (bound, bucket) in HANDSHAKE_BUCKETS.iter().zip(&r.buckets) {
                let _ = writeln!(
                    out,
                    "minica_sidecar_handshake_duration_seconds_bucket{{{l},le=\"{bound}\"}} {}",
                    bucket.load(Relaxed)
                );
            }
            let count = r.handshake_count.load(Relaxed);
            let sum = r.handshake_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "minica_sidecar_handshake_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "minica_sidecar_handshake_duration_seconds_sum{{{l}}} {sum}"
            );
            let _ = writeln!(
                out,
                "minica_sidecar_handshake_duration_seconds_count{{{l}}} {count}"
            );
        }
        header(
            &mut out,
            "minica_sidecar_bytes_total",
            "counter",
            "Payload bytes proxied, by flow.",
        );
        for r in &self.routes {
            let l = labels(r);
            let _ = writeln!(
                out,
                "minica_sidecar_bytes_total{{{l},flow=\"to_upstream\"}} {}",
                r.bytes_to_upstream.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "minica_sidecar_bytes_total{{{l},flow=\"from_upstream\"}} {}",
                r.bytes_from_upstream.load(Relaxed)
            );
        }
        header(
            &mut out,
            "minica_sidecar_cert_expiry_timestamp_seconds",
            "gauge",
            "notAfter of the certificate in use (unix seconds); follows reloads and renewals.",
        );
        for r in &self.routes {
            let v = r.cert_not_after.load(Relaxed);
            if v != NONE {
                let _ = writeln!(
                    out,
                    "minica_sidecar_cert_expiry_timestamp_seconds{{{}}} {v}",
                    labels(r)
                );
            }
        }
        let online = |bit: u64| {
            self.routes
                .iter()
                .filter(move |r| r.online.load(Relaxed) & bit != 0)
        };
        header(
            &mut out,
            "minica_sidecar_renewals_total",
            "counter",
            "Renewals from the online CA (--renew-from), by result.",
        );
        for r in online(RENEWS) {
            let l = labels(r);
            let _ = writeln!(
                out,
                "minica_sidecar_renewals_total{{{l},result=\"ok\"}} {}",
                r.renewals_ok.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "minica_sidecar_renewals_total{{{l},result=\"error\"}} {}",
                r.renewals_failed.load(Relaxed)
            );
        }
        header(
            &mut out,
            "minica_sidecar_crl_fetches_total",
            "counter",
            "CRL fetches from the online CA (--crl-from), by result.",
        );
        for r in online(FETCHES_CRL) {
            let l = labels(r);
            let _ = writeln!(
                out,
                "minica_sidecar_crl_fetches_total{{{l},result=\"ok\"}} {}",
                r.crl_fetches_ok.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "minica_sidecar_crl_fetches_total{{{l},result=\"error\"}} {}",
                r.crl_fetches_failed.load(Relaxed)
            );
        }
        header(
            &mut out,
            "minica_sidecar_crl_next_update_timestamp_seconds",
            "gauge",
            "Earliest nextUpdate of the CRLs in use (unix seconds).",
        );
        for r in &self.routes {
            let v = r.crl_next_update.load(Relaxed);
            if v != NONE {
                let _ = writeln!(
                    out,
                    "minica_sidecar_crl_next_update_timestamp_seconds{{{}}} {v}",
                    labels(r)
                );
            }
        }
        header(
            &mut out,
            "minica_sidecar_reloads_total",
            "counter",
            "Credential reload attempts, by result.",
        );
        for r in &self.routes {
            let l = labels(r);
            let _ = writeln!(
                out,
                "minica_sidecar_reloads_total{{{l},result=\"ok\"}} {}",
                r.reloads_ok.load(Relaxed)
            );
            let _ = writeln!(
                out,
                "minica_sidecar_reloads_total{{{l},result=\"error\"}} {}",
                r.reloads_failed.load(Relaxed)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let r = Arc::new(RouteMetrics::new("web-in", Direction::Inbound));
        r.connection(ConnResult::Closed);
        r.connection(ConnResult::Closed);
        r.handshake_failed(FailureReason::Revoked);
        r.handshake_done(Duration::from_millis(3));
        r.active_add(1);
        r.bytes_to_upstream().fetch_add(10, Relaxed);
        let text = Metrics::new(vec![r]).render();
        let l = "route=\"web-in\",direction=\"inbound\"";
        for line in [
            format!("minica_sidecar_connections_total{{{l},result=\"closed\"}} 2"),
            format!("minica_sidecar_handshake_failures_total{{{l},reason=\"revoked\"}} 1"),
            format!("minica_sidecar_handshake_failures_total{{{l},reason=\"expired\"}} 0"),
            format!("minica_sidecar_active_connections{{{l}}} 1"),
            format!("minica_sidecar_handshake_duration_seconds_bucket{{{l},le=\"0.0025\"}} 0"),
            format!("minica_sidecar_handshake_duration_seconds_bucket{{{l},le=\"0.005\"}} 1"),
            format!("minica_sidecar_handshake_duration_seconds_bucket{{{l},le=\"+Inf\"}} 1"),
            format!("minica_sidecar_bytes_total{{{l},flow=\"to_upstream\"}} 10"),
            "# TYPE minica_sidecar_handshake_duration_seconds histogram".to_string(),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("cert_expiry_timestamp_seconds{"),
            "no creds yet"
        );
    }

    #[test]
    fn renders_online_counters_only_for_online_routes() {
        let online = Arc::new(RouteMetrics::new("in", Direction::Inbound));
        let offline = Arc::new(RouteMetrics::new("out", Direction::Outbound));
        online.set_online(true, true);
        online.renewal(true);
        online.renewal(false);
        online.renewal(true);
        online.crl_fetch(false);
        let text = Metrics::new(vec![online, offline]).render();
        let l = "route=\"in\",direction=\"inbound\"";
        for line in [
            format!("minica_sidecar_renewals_total{{{l},result=\"ok\"}} 2"),
            format!("minica_sidecar_renewals_total{{{l},result=\"error\"}} 1"),
            format!("minica_sidecar_crl_fetches_total{{{l},result=\"ok\"}} 0"),
            format!("minica_sidecar_crl_fetches_total{{{l},result=\"error\"}} 1"),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("renewals_total{route=\"out\""), "{text}");
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
