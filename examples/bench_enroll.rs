//! Enrolment load for the benchmark report (`scripts/bench.sh`): many
//! concurrent clients, each enrolment on a new TLS connection (as distinct
//! machines would), against `minica serve` (`POST /v1/enroll` with one-time
//! tokens) or `cfssl serve` (`POST /api/v1/cfssl/sign`) signing the same
//! kind of CSR (ECDSA P-256, one name).
//!
//! ```text
//! bench_enroll --url https://127.0.0.1:8443 --ca-bundle bundle.pem \
//!     --api minica --tokens tokens.txt --conns 32
//! bench_enroll --url https://127.0.0.1:8888 --ca-bundle srv-ca.pem \
//!     --api cfssl --count 2000 --conns 32
//! ```
//!
//! With `--api minica`, `--tokens FILE` holds one `NAME TOKEN` pair per line
//! (one enrolment each). Prints one JSON line: enrolments/s, latency
//! percentiles, and counts of successes and failures. CSRs are made before
//! the clock starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    url: String,
    bundle: std::path::PathBuf,
    api: String,
    tokens: Option<std::path::PathBuf>,
    count: usize,
    conns: usize,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        url: String::new(),
        bundle: Default::default(),
        api: "minica".into(),
        tokens: None,
        count: 1000,
        conns: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--ca-bundle" => a.bundle = value()?.into(),
            "--api" => a.api = value()?,
            "--tokens" => a.tokens = Some(value()?.into()),
            "--count" => a.count = value()?.parse()?,
            "--conns" => a.conns = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.url.is_empty() || a.bundle.as_os_str().is_empty() {
        return Err("usage: bench_enroll --url URL --ca-bundle FILE [--api minica|cfssl] [--tokens FILE] [--count N] [--conns C]".into());
    }
    Ok(a)
}

/// One request to send: the path and the JSON body.
struct Job {
    path: &'static str,
    body: Bytes,
}

fn csr_pem(name: &str) -> Result<String, BoxError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    Ok(params.serialize_request(&key)?.pem()?)
}

fn jobs(args: &Args) -> Result<Vec<Job>, BoxError> {
    if args.api == "cfssl" {
        return (0..args.count)
            .map(|i| {
                let body = serde_json::json!({
                    "certificate_request": csr_pem(&format!("bench-{i}"))?,
                    "profile": "leaf",
                });
                Ok(Job {
                    path: "/api/v1/cfssl/sign",
                    body: serde_json::to_vec(&body)?.into(),
                })
            })
            .collect();
    }
    let path = args
        .tokens
        .as_ref()
        .ok_or("--api minica needs --tokens FILE")?;
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, token) = line
                .split_once(' ')
                .ok_or_else(|| format!("{}: expected `NAME TOKEN` lines", path.display()))?;
            let body = serde_json::json!({ "token": token.trim(), "csr": csr_pem(name)? });
            Ok(Job {
                path: "/v1/enroll",
                body: serde_json::to_vec(&body)?.into(),
            })
        })
        .collect()
}

async fn enrol_once(
    connector: &TlsConnector,
    addr: &str,
    host: &ServerName<'static>,
    authority: &str,
    job: &Job,
) -> Result<(), BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = connector.connect(host.clone(), tcp).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::post(job.path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(job.body.clone()))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let jobs = Arc::new(jobs(&args)?);
    let authority = args
        .url
        .strip_prefix("https://")
        .ok_or("--url must be https://HOST:PORT")?
        .trim_end_matches('/')
        .to_string();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h)
        .to_string();
    let server_name = ServerName::try_from(host)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in minica_pki::pem::load_certs(&args.bundle)? {
        roots.add(cert)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let latencies = runtime.block_on(async {
        let workers: Vec<_> = (0..args.conns)
            .map(|_| {
                let (jobs, next, failures, first_error) = (
                    jobs.clone(),
                    next.clone(),
                    failures.clone(),
                    first_error.clone(),
                );
                let (connector, server_name, authority) =
                    (connector.clone(), server_name.clone(), authority.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let t = Instant::now();
                        match enrol_once(&connector, &authority, &server_name, &authority, job)
                            .await
                        {
                            Ok(()) => latencies.push(t.elapsed()),
                            Err(e) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut first) = first_error.lock() {
                                    first.get_or_insert_with(|| e.to_string());
                                }
                            }
                        }
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap_or_default());
        }
        all
    });
    let secs = start.elapsed().as_secs_f64();
    let mut sorted = latencies;
    sorted.sort();
    let first_error = first_error.lock().ok().and_then(|e| e.clone());
    println!(
        "{}",
        serde_json::json!({
            "api": args.api,
            "conns": args.conns,
            "ok": sorted.len(),
            "failed": failures.load(Ordering::Relaxed),
            "first_error": first_error,
            "enrolments_per_s": sorted.len() as f64 / secs,
            "p50_ms": percentile(&sorted, 0.50),
            "p99_ms": percentile(&sorted, 0.99),
        })
    );
    Ok(())
}
