//! In-process CA figures for the benchmark report (`scripts/bench.sh`):
//! durable issuances per second, the time to build a CRL of 100,000
//! entries, and 3-certificate chain verifications per second (new leaves,
//! and one chain repeated).
//!
//! ```text
//! cargo run --release --example bench_ca -- --run     # the figures of docs/BENCHMARKS.md
//! cargo run --release --example bench_ca -- --smoke   # small counts: checks it works
//! ```
//!
//! Prints one JSON line. Everything runs on one thread (one core), except
//! the last figure: new-leaf verifications spread over every core, as a
//! server verifying many clients at once does (the verifier is `Sync`).

use std::time::{Duration, Instant};

use minica_ca::crl::{build_crl, CrlEntry, CrlParams, RevocationReason};
use minica_ca::verify::{verify, SubjectName, VerifyRequest};
use minica_ca::{Ca, CaHome, InitOptions, LeafRequest};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

struct Counts {
    issuances: usize,
    crl_entries: usize,
    verify_for: Duration,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counts = match std::env::args().nth(1).as_deref() {
        Some("--run") => Counts {
            issuances: 20_000,
            crl_entries: 100_000,
            verify_for: Duration::from_secs(3),
        },
        Some("--smoke") => Counts {
            issuances: 200,
            crl_entries: 1_000,
            verify_for: Duration::from_millis(200),
        },
        _ => return Err("usage: bench_ca --run | --smoke".into()),
    };
    let dir = tempfile::tempdir()?;
    let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default())?;

    // Durable issuance: key generation, signing and one flushed ledger
    // commit for the whole batch.
    let requests = (0..counts.issuances)
        .map(|i| Ok(LeafRequest::new(format!("bench-{i}").parse()?)))
        .collect::<Result<Vec<_>, minica_ca::Error>>()?;
    let start = Instant::now();
    let issued = ca.issue_batch(&requests)?;
    let issuances_per_s = issued.len() as f64 / start.elapsed().as_secs_f64();

    // A CRL with many entries, signed by the intermediate.
    let now = OffsetDateTime::now_utc();
    let mut params = CrlParams::new(1, now);
    params.entries = (0..counts.crl_entries as u64)
        .map(|i| CrlEntry {
            serial: [&[0x40u8][..], &i.to_be_bytes()[..]].concat(),
            revoked_at: now,
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    let start = Instant::now();
    let crl = build_crl(ca.intermediate().der(), ca.intermediate().key(), &params)?;
    let crl_secs = start.elapsed().as_secs_f64();

    // Verification of leaf -> intermediate -> root, with a host name. The
    // verifier remembers signatures it has checked (ca/src/verify/sigcache.rs),
    // so two figures: every leaf new (its signature really checked, the
    // intermediate's remembered: a server seeing many clients), and one chain
    // again and again (a probe or a client re-checking the same server).
    let intermediates = [ca.intermediate().der().clone()];
    let anchors: [CertificateDer<'_>; 1] = [ca.root().der().clone()];
    let check = |leaf: &[u8], name: &str| -> Result<(), Box<dyn std::error::Error>> {
        let mut request = VerifyRequest::new(leaf, &anchors, now);
        request.intermediates = &intermediates;
        request.name = Some(SubjectName::Host(name.into()));
        let outcome = verify(&request);
        if outcome.is_valid() {
            Ok(())
        } else {
            Err(format!("benchmark chain does not verify: {}", outcome.human()).into())
        }
    };
    let start = Instant::now();
    for leaf in &issued {
        check(&leaf.record.cert_der, &leaf.record.name)?;
    }
    let distinct_per_s = issued.len() as f64 / start.elapsed().as_secs_f64();
    // The same work on every core. Fresh leaves: the ones checked above are
    // remembered by the signature cache.
    let fresh_requests = (0..counts.issuances)
        .map(|i| Ok(LeafRequest::new(format!("fresh-{i}").parse()?)))
        .collect::<Result<Vec<_>, minica_ca::Error>>()?;
    let fresh = ca.issue_batch(&fresh_requests)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = fresh
            .chunks(fresh.len().div_ceil(threads))
            .map(|chunk| {
                scope.spawn(|| {
                    chunk
                        .iter()
                        .try_for_each(|leaf| check(&leaf.record.cert_der, &leaf.record.name))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "verify thread panicked".to_string())?)
    })?;
    let all_cores_per_s = fresh.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut repeated = 0u64;
    while start.elapsed() < counts.verify_for {
        check(&issued[0].record.cert_der, &issued[0].record.name)?;
        repeated += 1;
    }
    let repeated_per_s = repeated as f64 / start.elapsed().as_secs_f64();

    println!(
        "{{\"durable_issuances_per_s\":{issuances_per_s:.1},\"issuances\":{},\"crl_entries\":{},\"crl_bytes\":{},\"crl_100k_entries_s\":{crl_secs:.4},\"verifications_per_s\":{distinct_per_s:.1},\"repeated_verifications_per_s\":{repeated_per_s:.1},\"verifications_all_cores_per_s\":{all_cores_per_s:.1},\"verify_threads\":{threads}}}",
        issued.len(),
        counts.crl_entries,
        crl.der().len()
    );
    Ok(())
}
