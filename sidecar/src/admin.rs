//! The admin endpoint (`--admin ADDR`): a tiny HTTP/1.1 responder for
//! `GET /healthz`, `GET /readyz` and `GET /metrics`. One request per
//! connection, no request bodies.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// Longest request head we read.
const MAX_HEAD: usize = 8 * 1024;
/// A client that has not sent its request by then is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin endpoint reports on.
#[derive(Debug)]
pub struct AdminState {
    /// The metrics of every route.
    pub metrics: Metrics,
    /// True once every listener is bound; false again while draining.
    pub serving: AtomicBool,
}

impl AdminState {
    /// `None` when ready, else why not.
    pub fn not_ready(&self) -> Option<String> {
        if !self.serving.load(Relaxed) {
            return Some("listeners not serving (starting or draining)".into());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.metrics
            .routes()
            .iter()
            .find(|r| !r.cert_valid_at(now))
            .map(|r| format!("route {}: certificate not valid now", r.route()))
    }

    /// The status line, content type and body for a request line.
    pub fn respond(&self, request_line: &str) -> (&'static str, &'static str, String) {
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        const TEXT: &str = "text/plain; charset=utf-8";
        if method != "GET" && method != "HEAD" {
            return ("405 Method Not Allowed", TEXT, "only GET\n".into());
        }
        match path {
            "/healthz" => ("200 OK", TEXT, "ok\n".into()),
            "/readyz" => match self.not_ready() {
                None => ("200 OK", TEXT, "ready\n".into()),
                Some(why) => (
                    "503 Service Unavailable",
                    TEXT,
                    format!("not ready: {why}\n"),
                ),
            },
            "/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            _ => (
                "404 Not Found",
                TEXT,
                "try /healthz, /readyz or /metrics\n".into(),
            ),
        }
    }
}

/// Serves the admin endpoint until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let st = state.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &st)).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("");
    let (status, ctype, body) = state.respond(line);
    let is_head = line.starts_with("HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RouteMetrics;
    use crate::settings::Direction;

    #[test]
    fn routes_requests() {
        let m = Arc::new(RouteMetrics::new("r", Direction::Inbound));
        let st = AdminState {
            metrics: Metrics::new(vec![m]),
            serving: AtomicBool::new(true),
        };
        assert_eq!(st.respond("GET /healthz HTTP/1.1").0, "200 OK");
        assert_eq!(st.respond("GET /nope HTTP/1.1").0, "404 Not Found");
        assert_eq!(
            st.respond("POST /metrics HTTP/1.1").0,
            "405 Method Not Allowed"
        );
        // No credentials recorded: not ready.
        let (status, _, body) = st.respond("GET /readyz HTTP/1.1");
        assert_eq!(status, "503 Service Unavailable", "{body}");
        let (_, ctype, body) = st.respond("GET /metrics HTTP/1.1");
        assert!(ctype.contains("0.0.4") && body.contains("minica_sidecar_active_connections"));
    }
}
