//! The command line (clap types only; validation is in
//! `minica_sidecar::settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use minica_sidecar::settings::{RawGlobal, RawRoute, Source};

const AFTER_HELP: &str = "\
Exit status:
  0  stopped cleanly (SIGTERM/SIGINT, after draining), or `check` found the config valid
  2  usage, input or I/O error (bad flag or config, unreadable file, address in use)

Docs: docs/sidecar.md";

/// An mTLS sidecar: inbound (mTLS in, plaintext to the local service) and
/// outbound (plaintext in, mTLS out) routes, from PEM files only.
#[derive(Debug, Parser)]
#[command(name = "minica-sidecar", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Accept mTLS on --listen, require and verify a client certificate,
    /// forward plaintext to --upstream.
    Inbound(InboundArgs),
    /// Accept plaintext on --listen, open mTLS to --upstream, verify the
    /// server for --server-name and present our certificate.
    Outbound(OutboundArgs),
    /// Run every route of a TOML config file.
    Run(ConfigArgs),
    /// Validate a TOML config file (and the files it names) and exit.
    Check(ConfigArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InboundArgs {
    /// Send a PROXY protocol header upstream (only `v2`).
    #[arg(long, value_name = "VERSION")]
    pub(crate) proxy_protocol: Option<String>,
    #[command(flatten)]
    pub(crate) route: RouteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct OutboundArgs {
    /// The name (DNS or IP) the upstream's certificate must be valid for.
    #[arg(long, required = true)]
    pub(crate) server_name: String,
    #[command(flatten)]
    pub(crate) route: RouteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RouteArgs {
    /// Address to listen on (IP:PORT).
    #[arg(long, required = true)]
    pub(crate) listen: String,
    /// Address to connect to (HOST:PORT).
    #[arg(long, required = true)]
    pub(crate) upstream: String,
    /// Directory with chain.pem, key.pem and ca.pem (what `minica issue` writes).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cert", "key", "ca"])]
    pub(crate) identity: Option<PathBuf>,
    /// Our certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// Our private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// CA bundle peers must chain to (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// CRLs (PEM); revoked peers are refused at the handshake.
    #[arg(long, value_name = "FILE")]
    pub(crate) crl: Option<PathBuf>,
    /// Accept only this peer identity (repeatable): spiffe://TD/PATH,
    /// spiffe://TD/PREFIX/* or dns:NAME. Without it, every peer chaining to
    /// the CA is accepted (and a warning is logged).
    #[arg(long, value_name = "ID")]
    pub(crate) allow: Vec<String>,
    /// Admin endpoint (IP:PORT) serving /healthz, /readyz, /metrics.
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<String>,
    /// Route name in logs and metrics [default: inbound / outbound].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Abandon a TLS handshake after this long [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) handshake_timeout: Option<String>,
    /// Close a connection with no traffic for this long [default: none].
    #[arg(long, value_name = "DURATION")]
    pub(crate) idle_timeout: Option<String>,
    /// Refuse connections beyond this many open at once [default: 10000].
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<u64>,
    /// After SIGTERM, let open connections run this long [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) drain_timeout: Option<String>,
    /// Also allow TLS 1.2 (ECDHE + AEAD suites only); default is TLS 1.3 only.
    #[arg(long)]
    pub(crate) tls12: bool,
    /// What is spoken before TLS: tcp (TLS from the first byte, default) or
    /// mysql (MySQL/MariaDB greeting and SSLRequest, then TLS).
    #[arg(long, value_name = "PROTOCOL")]
    pub(crate) protocol: Option<String>,
    /// Renew the --identity DIR from this `minica serve` (https://HOST:PORT)
    /// at two thirds of the certificate's lifetime, over mutual TLS; the new
    /// files are written into DIR and hot-reloaded.
    #[arg(long, value_name = "URL", requires = "identity")]
    pub(crate) renew_from: Option<String>,
    /// Fetch the CRLs from this `minica serve` at start, before their
    /// nextUpdate and on SIGHUP, into --crl FILE [default: DIR/crl.pem with
    /// --identity].
    #[arg(long, value_name = "URL")]
    pub(crate) crl_from: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The TOML config file.
    #[arg(long, value_name = "FILE", required = true)]
    pub(crate) config: PathBuf,
}

impl RouteArgs {
    fn into_raw(
        self,
        direction: &str,
        server_name: Option<String>,
        proxy_protocol: Option<String>,
    ) -> (RawGlobal, Vec<RawRoute>) {
        let global = RawGlobal {
            admin: self.admin,
            log_format: self.log_format,
            source: Source::Cli,
        };
        let route = RawRoute {
            name: self.name,
            direction: Some(direction.to_string()),
            listen: Some(self.listen),
            upstream: Some(self.upstream),
            identity: self.identity,
            cert: self.cert,
            key: self.key,
            ca: self.ca,
            crl: self.crl,
            allow: self.allow,
            server_name,
            protocol: self.protocol,
            proxy_protocol,
            tls12: self.tls12,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
            renew_from: self.renew_from,
            crl_from: self.crl_from,
        };
        (global, vec![route])
    }
}

impl InboundArgs {
    pub(crate) fn into_raw(self) -> (RawGlobal, Vec<RawRoute>) {
        self.route.into_raw("inbound", None, self.proxy_protocol)
    }
}

impl OutboundArgs {
    pub(crate) fn into_raw(self) -> (RawGlobal, Vec<RawRoute>) {
        self.route
            .into_raw("outbound", Some(self.server_name), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn identity_conflicts_with_cert() {
        let r = Cli::try_parse_from([
            "minica-sidecar",
            "inbound",
            "--listen",
            "127.0.0.1:1",
            "--upstream",
            "h:2",
            "--identity",
            "d",
            "--cert",
            "c",
        ]);
        assert!(r.is_err());
    }
}
