//! Hardening (issue #9): tests that try hard to break minica.
//!
//! - [`parsers`]: every parser under property tests (proptest) and mutation
//!   of real seeds, plus a replay of the seed corpus in `tests/corpus/`.
//! - [`abuse`]: real `minica-sidecar` processes under abuse: stalled
//!   handshakes, a flood past `--max-connections`, bad clients of every
//!   kind, large half-closed transfers.
//! - [`crash`]: `minica issue` / `revoke` killed with SIGKILL at random
//!   moments, alone and concurrently; the CA must stay consistent.
//! - [`processes`]: the `minica` and `minica-sidecar check` command lines on
//!   mutated files.
//! - [`proxy_v2`]: PROXY v2 headers round-trip through an independent reader.
//! - [`mysql_wire`]: MySQL routes of the real sidecar fed garbage.
//! - [`security`]: file modes, no key material in output or logs, no
//!   `unsafe` in our crates.
//!
//! Every loop is bounded in count and in time ([`Budget`]); no test asserts
//! on timing. Heavier runs: `MINICA_CRASH_ITERATIONS=200` (crash test) and
//! `MINICA_PROPTEST_CASES=4096` (parsers).

mod abuse;
mod crash;
mod mysql_wire;
mod parsers;
mod processes;
mod proxy_v2;
mod security;

use std::time::{Duration, Instant};

/// A bound on a loop: at most `count` iterations and at most `time`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    count: usize,
    end: Instant,
}

impl Budget {
    /// At most `count` iterations within `time` from now.
    pub(crate) fn new(count: usize, time: Duration) -> Budget {
        Budget {
            count,
            end: Instant::now() + time,
        }
    }

    /// Whether iteration `i` (0-based) may run.
    pub(crate) fn allows(&self, i: usize) -> bool {
        i < self.count && Instant::now() < self.end
    }
}

/// An environment variable as a number, else `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The repository's `tests/corpus/<parser>` directory.
pub(crate) fn corpus_dir(parser: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(parser)
}

/// A small deterministic PRNG (xorshift64*), seeded from the clock unless
/// `MINICA_HARDEN_SEED` is set; the seed is printed so a failure can be
/// replayed.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator; prints its seed with `what`.
    pub(crate) fn new(what: &str) -> Rng {
        let seed = std::env::var("MINICA_HARDEN_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9E37_79B9_7F4A_7C15)
            });
        eprintln!("{what}: MINICA_HARDEN_SEED={seed}");
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
