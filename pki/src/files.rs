//! The identity directory every minica tool reads and writes: the files
//! `minica issue`, `minica enroll` and `minica renew` write, and that the
//! sidecar's and probe's `--identity DIR` read; and the certificate chain
//! with its key that a client presents.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// The files of an identity directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    /// `cert.pem`: the leaf.
    pub cert: PathBuf,
    /// `chain.pem`: the leaf and the intermediates.
    pub chain: PathBuf,
    /// `key.pem`: the private key, PKCS#8, 0600.
    pub key: PathBuf,
    /// `ca.pem`: the trust bundle (roots).
    pub ca: PathBuf,
}

impl IdentityFiles {
    /// The file names in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        IdentityFiles {
            cert: dir.join("cert.pem"),
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            ca: dir.join("ca.pem"),
        }
    }

    /// The first of the files that exists (a dangling symlink counts), if
    /// any: what a writer that must not overwrite refuses, naming it.
    pub fn first_existing(&self) -> Option<&Path> {
        [&self.cert, &self.chain, &self.key, &self.ca]
            .into_iter()
            .find(|path| path.symlink_metadata().is_ok())
            .map(PathBuf::as_path)
    }
}

/// A client certificate chain and its key, presented in mutual TLS. Its
/// `Debug` never shows the key, which is wiped when dropped.
pub struct ClientIdentity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key. Hand rustls a `clone_key()`: its ring key provider
    /// wipes the copy it is given once it has parsed it.
    pub key: Zeroizing<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .field("key", &"[elided]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_existing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = IdentityFiles::in_dir(dir.path());
        assert_eq!(files.first_existing(), None);
        std::fs::write(&files.key, "x").unwrap();
        std::fs::write(&files.ca, "x").unwrap();
        assert_eq!(files.first_existing(), Some(files.key.as_path()));
    }

    #[test]
    fn the_identity_key_is_never_printed() {
        let id = ClientIdentity {
            chain: vec![],
            key: Zeroizing::new(PrivateKeyDer::Pkcs8(vec![1, 2, 3].into())),
        };
        assert!(format!("{id:?}").contains("[elided]"));
        assert!(!format!("{id:?}").contains("1, 2, 3"));
    }
}
