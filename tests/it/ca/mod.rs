//! `minica` end to end: init, issue, inspect, list, bundle, checked by
//! openssl and by a rustls mutual-TLS handshake.

mod commands;
mod inputs;
mod issue;
mod tls;

use std::path::Path;

use crate::support::{Ran, Scratch};

impl Scratch {
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
