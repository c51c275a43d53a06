//! Logging: the subscriber (text or JSON on stderr) and the one line written
//! per finished connection.

use std::io::IsTerminal;
use std::time::Duration;

use crate::route::ConnReport;
use crate::settings::{LogFormat, RouteSettings};

/// Installs the global subscriber. `RUST_LOG` overrides the default level
/// (`info`). Does nothing if one is already installed.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Logs one finished connection: route, peer address and identity, TLS
/// version and cipher, bytes each way, duration, and how it ended.
pub fn connection(route: &RouteSettings, r: &ConnReport, took: Duration) {
    let end = r.result.map_or("error", |x| x.as_str());
    let peer = r.peer.map(|p| p.to_string()).unwrap_or_default();
    let identity = r.identity.as_deref().unwrap_or("-");
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let reason = r.reason.map_or("", |x| x.as_str());
    let detail = r.detail.as_deref().unwrap_or("");
    if r.reason.is_some() || matches!(end, "error" | "upstream_failed") {
        tracing::warn!(
            route = %route.name,
            direction = %route.direction.as_str(),
            peer = %peer,
            peer_identity = %identity,
            tls_version = %r.tls_version.unwrap_or("-"),
            cipher = %r.cipher.as_deref().unwrap_or("-"),
            bytes_to_upstream = r.to_upstream,
            bytes_from_upstream = r.from_upstream,
            duration_ms,
            end = %end,
            reason = %reason,
            error = %detail,
            "connection failed"
        );
    } else {
        tracing::info!(
            route = %route.name,
            direction = %route.direction.as_str(),
            peer = %peer,
            peer_identity = %identity,
            tls_version = %r.tls_version.unwrap_or("-"),
            cipher = %r.cipher.as_deref().unwrap_or("-"),
            bytes_to_upstream = r.to_upstream,
            bytes_from_upstream = r.from_upstream,
            duration_ms,
            end = %end,
            "connection closed"
        );
    }
}
