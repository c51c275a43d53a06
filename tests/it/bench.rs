//! A smoke run of the benchmark harness (`scripts/bench/bench.py --smoke`)
//! so that it cannot rot: every peer (stunnel, HAProxy, wrk, iperf3,
//! hyperfine, cfssl (gencert and serve), openssl, MariaDB, PostgreSQL behind
//! `minica serve`) is driven for a second or so and the report is
//! written. The figures are never asserted: debug builds on a shared machine
//! say nothing about speed.

use std::path::Path;
use std::process::Command;

use crate::support::{self, run};

#[test]
fn benchmark_harness_smoke_run_writes_a_full_report() {
    for tool in [
        "python3",
        "stunnel4",
        "haproxy",
        "wrk",
        "iperf3",
        "hyperfine",
        "cfssl",
        "openssl",
        "mariadbd",
        "mariadb-slap",
        "runuser",
    ] {
        support::require_tool(tool);
    }
    let out = tempfile::tempdir().unwrap();
    let bins = support::bin("minica");
    let bin_dir = bins.parent().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("python3")
        .arg(root.join("scripts/bench/bench.py"))
        .arg("--smoke")
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(out.path()))
    .ok();

    let report = std::fs::read_to_string(out.path().join("BENCHMARKS.md")).unwrap();
    for want in [
        "## Sidecar pairs",
        "| measure | minica-sidecar | stunnel | haproxy | minica vs best peer |",
        "| bulk throughput (MB/s, iperf3) |",
        "| new mTLS connections/s (one request each) |",
        "| RSS KiB per idle connection (50) |",
        "## CA",
        "| minica issue |",
        "| cfssl gencert |",
        "| openssl req + x509 |",
        "## Online CA",
        "| minica serve, embedded store |",
        "| minica serve, PostgreSQL |",
        "| cfssl serve |",
        "## MySQL",
        "| MariaDB native TLS |",
        "minica-sidecar outbound (mysql)",
    ] {
        assert!(report.contains(want), "report lacks {want:?}:\n{report}");
    }
    for plot in ["throughput-vs-concurrency.svg", "latency-percentiles.svg"] {
        let svg = std::fs::read_to_string(out.path().join("bench").join(plot)).unwrap();
        assert!(svg.contains("<svg"), "{plot} is not an SVG");
    }
}
