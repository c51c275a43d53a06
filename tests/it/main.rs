//! End-to-end tests across crates: the real `minica` and `minica-sidecar`
//! binaries against real peers (`openssl`, `curl`) on 127.0.0.1.
//!
//! One test binary for the whole workspace, so the suite links once.
//! The binaries are built by `scripts/test.sh` (`cargo build --workspace --bins`)
//! before `cargo test` runs; see `support::bin`.
// reason: this is test code; a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod bench;
mod ca;
mod enrol;
mod export;
mod hardening;
mod mysql;
mod pgstore;
mod probe;
mod renew;
mod revoke;
mod serve;
mod sidecar;
mod verify;
