//! `minica` end to end: init, issue, inspect, list, bundle, checked by
//! openssl and by a rustls mutual-TLS handshake.

mod commands;
mod inputs;
mod issue;
mod tls;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, Ran};

/// A scratch directory with a CA home (`home/`) and a working directory
/// (`work/`) for output files.
struct Scratch {
    _dir: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Scratch {
            _dir: dir,
            home,
            work,
        }
    }

    /// `minica --home HOME <args>` run in `work/`.
    fn minica(&self, args: &[&str]) -> Ran {
        support::run(support::minica(&self.home, &self.work).args(args))
    }

    /// `openssl <args>` run in `work/`.
    fn openssl(&self, args: &[&str]) -> Ran {
        support::require_tool("openssl");
        support::run(Command::new("openssl").current_dir(&self.work).args(args))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    /// `openssl verify` of `<dir>/cert.pem` with its own ca.pem and chain.pem.
    fn verify(&self, dir: &str, extra: &[&str]) -> Ran {
        let ca = format!("{dir}/ca.pem");
        let chain = format!("{dir}/chain.pem");
        let cert = format!("{dir}/cert.pem");
        let mut args = vec!["verify", "-CAfile", &ca, "-untrusted", &chain];
        args.extend_from_slice(extra);
        args.push(&cert);
        self.openssl(&args)
    }
}

/// Every file under `dir`, relative, sorted (for "nothing was written").
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
