//! Command-line arguments (clap types only; no logic).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use minica_ca::crl::RevocationReason;
use minica_ca::{KeyType, Name, San, Serial};
use minica_enrol::trust::{CaUrl, Fingerprint};
use time::OffsetDateTime;

use crate::exit::EXIT_CODES_HELP;

/// A private certificate authority for mutual TLS: issue, inspect and list
/// certificates for your services.
#[derive(Debug, Parser)]
#[command(name = "minica", version, about, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// CA home directory [default: $XDG_DATA_HOME/minica or ~/.local/share/minica]
    #[arg(long, global = true, env = "MINICA_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// Ledger store: `embedded` (default: the redb ledger in the CA home,
    /// used through a running `minica serve` when it holds the home) or a
    /// PostgreSQL URL `postgres://USER@HOST:PORT/DATABASE` shared by every
    /// process (CA keys stay in the home)
    // The value may hold a password: never shown in --help.
    #[arg(
        long,
        global = true,
        env = "MINICA_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) store: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a CA: a self-signed root and an intermediate that signs leaves
    Init(InitArgs),
    /// Issue a certificate for NAME (creates the CA first if there is none)
    Issue(IssueArgs),
    /// Describe the certificates, CSR, CRL or key in a file (never key material)
    Inspect(InspectArgs),
    /// List the certificates in the ledger
    List(ListArgs),
    /// Print or write the trust bundle (the CA roots)
    Bundle(BundleArgs),
    /// Revoke a certificate (by NAME or --serial) and refresh the CRLs in the CA home
    Revoke(RevokeArgs),
    /// Publish the CRLs: the issuing intermediate's and the root's
    Crl(CrlArgs),
    /// Verify a certificate chain like a strict X.509 validator
    Verify(VerifyArgs),
    /// Connect to a TLS, mTLS or MySQL endpoint, explain the handshake and diagnose it
    Probe(ProbeArgs),
    /// Export an identity (the files of `minica issue`) for MySQL/MariaDB or as PKCS#12
    Export(ExportArgs),
    /// Renew NAME's certificate (same names, kind, key type), or every leaf expiring soon
    Renew(RenewArgs),
    /// Rotate the intermediate, or the root with a trust overlap
    Rotate(RotateArgs),
    /// Show the CA hierarchy (roots, intermediates, expiry) and what needs action
    Status(StatusArgs),
    /// Get a certificate for NAME from a `minica serve` with a one-time token
    Enroll(EnrollArgs),
    /// Make a one-time enrolment token for NAME (`minica enroll` / POST /v1/enroll)
    Token(TokenArgs),
    /// Run the online CA: enrol with tokens, renew over mTLS, serve the bundle and CRL (HTTPS)
    Serve(ServeArgs),
}

/// `minica serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Serves the online CA API over HTTPS (TLS 1.3) with a certificate it issues
itself for the listen host (24 h, kept in memory, renewed at two thirds):
POST /v1/enroll (one-time token + CSR), POST /v1/renew (mutual TLS + CSR),
GET /v1/bundle, GET /v1/crl (DER; ?format=pem: every level), GET /healthz.
--admin serves GET /metrics (Prometheus) and /healthz over plain HTTP.

Prints the URL and the SHA-256 fingerprint of every root (clients pin it
with `minica enroll --root-fingerprint`). With the embedded ledger it holds
the CA home and answers other `minica` commands on <home>/serve.sock (0600);
with --store postgres://... several servers share the ledger. SIGINT or
SIGTERM: stops accepting, finishes requests in flight (at most 10 s).
See docs/online-ca.md.

Exit codes: 0 stopped by a signal, 2 usage, input or I/O error (address in
use, no CA in the home, ...).")]
pub(crate) struct ServeArgs {
    /// API address, HOST:PORT (an IP or a DNS name; the server certificate names it)
    #[arg(long, value_name = "ADDR", default_value = minica_server::DEFAULT_LISTEN)]
    pub(crate) listen: String,
    /// Admin address for /metrics and /healthz (plain HTTP), e.g. 127.0.0.1:9902
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<std::net::SocketAddr>,
    /// Lifetime of the server's own HTTPS certificate (renewed at two thirds)
    #[arg(long, value_name = "DUR", default_value = "24h", value_parser = parse_duration)]
    pub(crate) cert_valid: Duration,
}

/// `minica enroll`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("trust").required(true).args(["ca_bundle", "root_fingerprint"])),
    after_help = "\
Generates the key here (it never leaves this machine), sends a CSR with the
token to the `minica serve` at --ca-url, checks the answer (our key, NAME
among the SANs, a chain to a root we trust) and writes cert.pem, chain.pem,
key.pem (0600) and ca.pem into --out DIR [default: ./NAME], as `minica issue`
does. Nothing is written unless everything succeeded.

Trust: --ca-bundle FILE (the CA's roots), or --root-fingerprint (the SHA-256
that `minica serve` prints at start, as sha256:HEX, plain hex or with `:`):
the bundle is fetched, the root with that fingerprint is kept, and the
server's certificate is verified against it before the token is sent.

Exit codes: 0 success, 2 refused (bad or used token, names not allowed),
unreachable CA, wrong fingerprint, existing files, usage, input or I/O error."
)]
pub(crate) struct EnrollArgs {
    /// DNS name or IP address the token was made for (the CSR's CN)
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Name,
    /// The online CA, https://HOST:PORT
    #[arg(long, value_name = "URL", value_parser = str::parse::<CaUrl>)]
    pub(crate) ca_url: CaUrl,
    /// The one-time token printed by `minica token NAME`
    #[arg(long, value_name = "T", env = "MINICA_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
    /// Trust the roots in FILE (PEM)
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// Trust the root with this SHA-256 fingerprint, fetched from the CA
    #[arg(long, value_name = "SHA256", value_parser = str::parse::<Fingerprint>)]
    pub(crate) root_fingerprint: Option<Fingerprint>,
    /// Key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096
    #[arg(long, value_name = "T", value_parser = str::parse::<KeyType>)]
    pub(crate) key_type: Option<KeyType>,
    /// Output directory [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Overwrite existing files in the output directory
    #[arg(long)]
    pub(crate) force: bool,
}

/// `minica renew`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("what").required(true).args(["name", "all", "ca_url"])),
    after_help = "\
NAME: renews NAME's current leaf (active, or expired) into --out DIR [default:
./NAME]: same SANs, EKU (server/client/both) and key type; a new key unless
--reuse-key (which reads DIR/key.pem and checks it is the old certificate's).
A leaf issued from a CSR keeps its public key. The old certificate becomes
`superseded` (valid until it expires), or revoked with reason superseded
under --revoke-old (the CRLs are refreshed). The ledger is flushed before the
files are renamed into place: ca.pem, key.pem, cert.pem, chain.pem last.

--all --within DUR: every active leaf expiring within DUR, soonest first, each
into --out BASE/NAME [default: ./NAME, relative to the working directory]. Every
one is tried; failures are reported and the exit code is 2 if any failed.
--dry-run prints what would be renewed and changes nothing.

--ca-url URL --identity DIR: renews online, without a CA home: the `minica
serve` at URL is trusted through DIR/ca.pem, and DIR's current certificate
and key authenticate the request (mutual TLS). Same names and validity period,
a new key of the same type unless --reuse-key; the files are replaced
atomically (ca.pem, key.pem, cert.pem, chain.pem last).

Exit codes: 0 success, 2 unknown or revoked NAME, any failure, usage, input or
I/O error."
)]
pub(crate) struct RenewArgs {
    /// The certificate's NAME
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Option<Name>,
    /// Renew every active leaf expiring within --within
    #[arg(long, requires = "within")]
    pub(crate) all: bool,
    /// With --all: the renewal window (s, m, h, d, w, y), e.g. 30d
    #[arg(long, value_name = "DUR", value_parser = parse_duration, requires = "all")]
    pub(crate) within: Option<Duration>,
    /// With --all: print what would be renewed, change nothing
    #[arg(long, requires = "all")]
    pub(crate) dry_run: bool,
    /// Keep the key (read from the identity directory's key.pem)
    #[arg(long)]
    pub(crate) reuse_key: bool,
    /// Validity of the new certificate [default: the old one's]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) valid: Option<Duration>,
    /// Identity directory [default: ./NAME]; with --all, the directory holding one per NAME
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Revoke the old certificate (reason superseded) instead of letting it expire
    #[arg(long)]
    pub(crate) revoke_old: bool,
    /// Renew online through the `minica serve` at URL (https://HOST:PORT), over
    /// mutual TLS with --identity's current certificate; needs no CA home
    #[arg(long, value_name = "URL", value_parser = str::parse::<CaUrl>, requires = "identity",
          conflicts_with_all = ["valid", "out", "revoke_old"])]
    pub(crate) ca_url: Option<CaUrl>,
    /// With --ca-url: the identity directory to renew in place (chain.pem, key.pem, ca.pem)
    #[arg(long, value_name = "DIR", requires = "ca_url")]
    pub(crate) identity: Option<PathBuf>,
}

/// `minica rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    #[command(subcommand)]
    pub(crate) what: RotateWhat,
}

/// What `minica rotate` replaces.
#[derive(Debug, Subcommand)]
pub(crate) enum RotateWhat {
    /// A new intermediate (new key) under the current root; old leaves keep verifying
    #[command(after_help = EXIT_CODES_HELP)]
    Intermediate {
        /// Validity of the new intermediate [default: 5y, never past the root]
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        valid: Option<Duration>,
    },
    /// A new root and intermediate, cross-signed by the old root (overlap), or --finish
    #[command(after_help = "\
Without --finish: a new root key and certificate, a new intermediate under it,
and a cross-certificate of the new intermediate signed by the old root. The
bundle holds both roots (redistribute it: `minica bundle`). New leaves'
chain.pem is leaf, cross-certificate, intermediate: clients that trust only
the old root verify them; clients with the new bundle verify old and new.

--finish: drops the old root from the bundle; refused while active leaves
still chain to it, unless --force.

Exit codes: 0 success, 2 refused, usage, input or I/O error.")]
    Root {
        /// Validity of the new root [default: 10y]
        #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "finish")]
        valid: Option<Duration>,
        /// Validity of the new intermediate [default: 5y, never past the root]
        #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "finish")]
        intermediate_valid: Option<Duration>,
        /// End the overlap: remove the old root from the bundle
        #[arg(long)]
        finish: bool,
        /// With --finish: even if active leaves still chain to the old root
        #[arg(long, requires = "finish")]
        force: bool,
    },
}

/// `minica status`.
#[derive(Debug, Args)]
#[command(after_help = "\
Prints every root and intermediate (current, cross-certificate or retired)
with its expiry, leaf counts, and one line starting with `warning:` per
problem: a CA certificate with less time left than the longest validity it
issues, an expired CA certificate, an unfinished root rotation. A healthy CA
prints no warning.

Exit codes: 0 success (also with warnings), 2 usage, input or I/O error.")]
pub(crate) struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `minica probe --starttls` speaks before TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StartTlsArg {
    /// MySQL/MariaDB: read the greeting, send an SSLRequest
    Mysql,
}

/// `minica probe`.
#[derive(Debug, Args)]
#[command(after_help = "\
Completes the TLS handshake whatever the certificate chain, reports what was
negotiated, then validates the chain the server sent as `minica verify` would
(purpose server, the server name, the bundle, the CRLs, now). The last line
names the problem (ok, missing-intermediate, unknown-authority, name-mismatch,
expired, not-yet-valid, revoked, wrong-purpose, version-or-cipher-mismatch,
client-certificate-required, client-certificate-rejected, not-tls,
connection-refused, timeout) and a `fix:` line says what to do. See
docs/troubleshooting.md.

Exit codes:
  0  ok
  1  any other diagnosis
  2  usage error, or a local file (--bundle, --identity, ...) cannot be used")]
pub(crate) struct ProbeArgs {
    /// The endpoint: HOST:PORT ([::1]:PORT for IPv6)
    #[arg(value_name = "HOST:PORT")]
    pub(crate) target: String,
    /// Name the certificate must carry, sent as SNI [default: HOST]
    #[arg(long, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// Trust anchors [default: the CA home's bundle.pem]
    #[arg(long, value_name = "FILE")]
    pub(crate) bundle: Option<PathBuf>,
    /// Untrusted intermediates to complete the chain, as `minica verify` (repeatable)
    #[arg(long, value_name = "FILE")]
    pub(crate) untrusted: Vec<PathBuf>,
    /// Client identity directory (chain.pem or cert.pem, and key.pem), presented when asked
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cert", "key"])]
    pub(crate) identity: Option<PathBuf>,
    /// Client certificate (PEM chain), presented when asked
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// CRLs to check the server's chain against (repeatable)
    #[arg(long, value_name = "FILE")]
    pub(crate) crl: Vec<PathBuf>,
    /// Speak this protocol before TLS on the same connection
    #[arg(long, value_enum, value_name = "PROTO")]
    pub(crate) starttls: Option<StartTlsArg>,
    /// Also offer TLS 1.2 (default: TLS 1.3 only)
    #[arg(long)]
    pub(crate) tls12: bool,
    /// Bound on connect plus handshake (s, m, h, d, w, y)
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_duration(s: &str) -> Result<Duration, minica_pki::Error> {
    minica_pki::duration::parse_duration(s)
}

/// `minica init`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct InitArgs {
    /// Trust domain of the SPIFFE IDs put in leaves
    #[arg(long, value_name = "D", default_value = minica_ca::DEFAULT_TRUST_DOMAIN)]
    pub(crate) trust_domain: String,
    /// Key type of the root and intermediate: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096
    #[arg(long, value_name = "T", default_value = "ecdsa-p256", value_parser = str::parse::<KeyType>)]
    pub(crate) key_type: KeyType,
    /// Root validity (s, m, h, d, w, y)
    #[arg(long, value_name = "DUR", default_value = "10y", value_parser = parse_duration)]
    pub(crate) root_valid: Duration,
    /// Intermediate validity (at most the root's)
    #[arg(long, value_name = "DUR", default_value = "5y", value_parser = parse_duration)]
    pub(crate) intermediate_valid: Duration,
}

/// `minica token`.
#[derive(Debug, Args)]
#[command(after_help = "\
Prints a one-time enrolment token (256 random bits, base64url) alone on the
last line of standard output; a line on standard error says the name, SANs
and expiry. The ledger keeps only the token's SHA-256 with the name, the SANs
and the expiry: the token itself is shown once. The SANs bound to it are what
`minica issue NAME` with the same --dns/--ip/--uri would give (NAME, those,
and the SPIFFE ID); a CSR enrolled with the token may ask for these only. The
token is consumed by its first successful enrolment.

--ttl: at most 30d (a token is a bearer secret; keep it short-lived).

Exit codes: 0 success, 2 usage, input or I/O error (nothing is stored).")]
pub(crate) struct TokenArgs {
    /// DNS name or IP address the token enrols (as `minica issue NAME`)
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Name,
    /// Another DNS SAN (repeatable)
    #[arg(long, value_name = "D", value_parser = San::dns)]
    pub(crate) dns: Vec<San>,
    /// An IP SAN (repeatable)
    #[arg(long, value_name = "A", value_parser = San::ip)]
    pub(crate) ip: Vec<San>,
    /// A URI SAN (repeatable)
    #[arg(long, value_name = "U", value_parser = San::uri)]
    pub(crate) uri: Vec<San>,
    /// Lifetime of the token (s, m, h, d, w, y; at most 30d) [default: 15m]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) ttl: Option<Duration>,
}

/// `minica issue`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct IssueArgs {
    /// DNS name or IP address: subject CN, first SAN and SPIFFE ID path
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Name,
    /// Another DNS SAN (repeatable)
    #[arg(long, value_name = "D", value_parser = San::dns)]
    pub(crate) dns: Vec<San>,
    /// An IP SAN (repeatable)
    #[arg(long, value_name = "A", value_parser = San::ip)]
    pub(crate) ip: Vec<San>,
    /// A URI SAN (repeatable)
    #[arg(long, value_name = "U", value_parser = San::uri)]
    pub(crate) uri: Vec<San>,
    /// Server certificate only (EKU serverAuth)
    #[arg(long, conflicts_with = "client")]
    pub(crate) server: bool,
    /// Client certificate only (EKU clientAuth)
    #[arg(long)]
    pub(crate) client: bool,
    /// Key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096
    #[arg(long, value_name = "T", value_parser = str::parse::<KeyType>, conflicts_with = "csr")]
    pub(crate) key_type: Option<KeyType>,
    /// Validity (s, m, h, d, w, y) [default: 90d]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) valid: Option<Duration>,
    /// Sign this PKCS#10 CSR (PEM or DER) instead of generating a key
    #[arg(long, value_name = "FILE")]
    pub(crate) csr: Option<PathBuf>,
    /// Output directory [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Overwrite existing files in the output directory
    #[arg(long)]
    pub(crate) force: bool,
}

/// `minica inspect`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct InspectArgs {
    /// A certificate (PEM, possibly several, or DER), CSR, CRL or key file
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// `minica list`.
#[derive(Debug, Args)]
#[command(after_help = "\
By default, expired and superseded certificates are hidden; --all shows them.
--expiring DUR shows only certificates that are neither revoked nor
superseded and expire within DUR (already expired ones included).

Exit codes: 0 success, 2 usage, input or I/O error.")]
pub(crate) struct ListArgs {
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// Only certificates that expire within DUR (s, m, h, d, w, y)
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) expiring: Option<Duration>,
    /// Include expired and superseded certificates
    #[arg(long)]
    pub(crate) all: bool,
}

/// `minica bundle`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct BundleArgs {
    /// Write the bundle to FILE (atomically) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `minica revoke`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("target").required(true).args(["name", "serial"])),
    after_help = "\
NAME revokes the name's active leaf. --serial revokes any leaf or intermediate
(a revoked intermediate is listed on the root's CRL). Revoking a revoked
certificate keeps its first date and reason and exits 0. The revocation is
flushed to the ledger first, then <home>/crl.pem is rewritten.

Exit codes: 0 success (also: already revoked), 2 unknown NAME or serial,
usage, input or I/O error."
)]
pub(crate) struct RevokeArgs {
    /// The certificate's NAME (its active leaf)
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Option<Name>,
    /// The certificate's serial, hex (`:` separators allowed)
    #[arg(long, value_name = "HEX", value_parser = str::parse::<Serial>)]
    pub(crate) serial: Option<Serial>,
    /// unspecified, keyCompromise, caCompromise, affiliationChanged, superseded,
    /// cessationOfOperation [default: unspecified]
    #[arg(long, value_name = "R", value_parser = str::parse::<RevocationReason>)]
    pub(crate) reason: Option<RevocationReason>,
}

/// `minica crl`.
#[derive(Debug, Args)]
#[command(after_help = "\
Publishes one CRL per CA level, each with a new CRL Number: the issuing
intermediate's (its revoked leaves) and the root's (revoked intermediates,
empty when none). <home>/crl.pem is always refreshed too.

PEM (default): every CRL in one file, intermediate first, root last.
--der: DER holds one CRL per file, so --out FILE is required: FILE gets the
intermediate's CRL and FILE-root (before the extension: crl.der ->
crl-root.der) the root's.

Exit codes: 0 success, 2 usage, input or I/O error.")]
pub(crate) struct CrlArgs {
    /// Write to FILE (atomically) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Write DER (needs --out; the root's CRL goes to a second file)
    #[arg(long, requires = "out")]
    pub(crate) der: bool,
    /// How long the CRLs stay fresh: nextUpdate = now + DUR (s, m, h, d, w, y)
    #[arg(long, value_name = "DUR", default_value = "7d", value_parser = parse_duration)]
    pub(crate) next_update: Duration,
}

/// What `minica verify --purpose` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PurposeArg {
    /// TLS server (EKU serverAuth)
    Server,
    /// TLS client (EKU clientAuth)
    Client,
    /// No EKU or key usage requirement
    Any,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("expected RFC 3339, e.g. 2026-03-01T00:00:00Z or 2026-03-01T00:00:00.5+01:00 ({e})")
    })
}

/// `minica verify`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("subject_name").args(["host", "ip", "email"])),
    after_help = "\
Every certificate in the bundle is a trust anchor. When --crl is given, every
certificate of the path but the anchor must be covered by a CRL (give the
CRLs of every level: <home>/crl.pem holds them).

Output: `OK NAME: leaf → intermediate → root` or `INVALID NAME: reason`.

Exit codes:
  0  valid
  1  not valid
  2  usage error, or a file cannot be read or holds no certificate"
)]
pub(crate) struct VerifyArgs {
    /// The certificate (PEM; more certificates after it are untrusted intermediates)
    #[arg(value_name = "CERT")]
    pub(crate) cert: PathBuf,
    /// Trust anchors [default: the CA home's bundle.pem]
    #[arg(long, value_name = "FILE")]
    pub(crate) bundle: Option<PathBuf>,
    /// Untrusted intermediates (repeatable)
    #[arg(long, value_name = "FILE")]
    pub(crate) untrusted: Vec<PathBuf>,
    /// CRLs, PEM (several per file) or DER (repeatable)
    #[arg(long, value_name = "FILE")]
    pub(crate) crl: Vec<PathBuf>,
    /// DNS name the leaf must carry (SANs only, never the CN)
    #[arg(long, value_name = "NAME")]
    pub(crate) host: Option<String>,
    /// IP address the leaf must carry
    #[arg(long, value_name = "ADDR")]
    pub(crate) ip: Option<IpAddr>,
    /// E-mail address the leaf must carry (rfc822Name SAN)
    #[arg(long, value_name = "ADDR")]
    pub(crate) email: Option<String>,
    /// What the leaf is used for
    #[arg(long, value_enum, default_value_t = PurposeArg::Server)]
    pub(crate) purpose: PurposeArg,
    /// Verification time, RFC 3339 (fractional seconds allowed) [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub(crate) at: Option<OffsetDateTime>,
    /// Most intermediates between leaf and anchor (0: the anchor signed the leaf)
    #[arg(long, value_name = "N")]
    pub(crate) max_depth: Option<usize>,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// `minica export`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads the identity that `minica issue NAME` wrote (--identity, default
./NAME: cert.pem, chain.pem, key.pem, ca.pem), checks that the certificate is
NAME's and the key is its own, and, when the CA home exists, that the serial
is in the ledger and not revoked (superseded or expired: a warning).

--format mysql: --out DIR [default: ./NAME-mysql] gets ca-cert.pem (roots and
intermediate), server-cert.pem + server-key.pem (EKU serverAuth),
client-cert.pem + client-key.pem (EKU clientAuth), crl.pem (every level's CRL,
when something is revoked or with --crl) and my.cnf ([mysqld], [client],
absolute paths). Keys are 0600; every file is written atomically.
--format p12: --out FILE or DIR [default: ./NAME.p12] gets key, leaf,
intermediate and roots, encrypted with the first line of --password-file
(PBES2 AES-256-CBC, HMAC-SHA256 MAC).

Exit codes: 0 success, 2 usage, input or I/O error (the message names the
file), also for a revoked certificate.")]
pub(crate) struct ExportArgs {
    /// The identity's NAME (its CN or a SAN)
    #[arg(value_name = "NAME", value_parser = str::parse::<Name>)]
    pub(crate) name: Name,
    /// mysql or p12
    #[arg(long, value_name = "F", value_parser = str::parse::<minica_ca::export::Format>)]
    pub(crate) format: minica_ca::export::Format,
    /// The identity directory [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    pub(crate) identity: Option<PathBuf>,
    /// Output directory (mysql) or file or directory (p12)
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
    /// mysql: server, client or both [default: what the certificate's EKU allows]
    #[arg(long, value_name = "R", value_parser = str::parse::<minica_ca::export::Role>)]
    pub(crate) role: Option<minica_ca::export::Role>,
    /// mysql: write crl.pem and ssl-crl even when nothing is revoked yet
    #[arg(long)]
    pub(crate) crl: bool,
    /// p12: the password is the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Replace existing output files
    #[arg(long)]
    pub(crate) force: bool,
}
