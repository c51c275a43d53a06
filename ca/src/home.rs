//! The CA home: where it is and what it holds.
//!
//! ```text
//! <home>/                  0700
//!   ca.json                CA settings (trust domain, key type); written last by init
//!   root.pem               current root certificate
//!   root-key.pem           its private key, PKCS#8 PEM, 0600
//!   intermediate.pem       current intermediate certificate (signs leaves)
//!   intermediate-key.pem   its private key, PKCS#8 PEM, 0600
//!   bundle.pem             trust bundle: every trusted root
//!   crl.pem                CRLs: every issuing intermediate's, then the root's
//!   ledger.redb            the ledger of every issued certificate (redb)
//!   lock                   exclusive lock held while a process uses the CA
//!   serve.sock             Unix socket of a running `minica serve` (0600): the
//!                          CLI reaches the ledger through it while the server
//!                          holds the home
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{io_err, Error};

/// How long a second process waits for the home's lock by default. Issuing
/// takes milliseconds, so a long wait means a stuck process.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// File name of the Unix socket through which a running `minica serve`
/// lends its ledger to the CLI (see [`crate::store::RemoteStore`]).
pub const SERVE_SOCKET: &str = "serve.sock";

/// A CA home directory and how to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaHome {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl CaHome {
    /// The home at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CaHome {
            dir: dir.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Resolves the home: `explicit` (`--home`), else `$MINICA_HOME`, else
    /// `$XDG_DATA_HOME/minica`, else `$HOME/.local/share/minica`.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, Error> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = if let Some(dir) = explicit {
            dir.to_path_buf()
        } else if let Some(dir) = env("MINICA_HOME") {
            PathBuf::from(dir)
        } else if let Some(xdg) = env("XDG_DATA_HOME") {
            PathBuf::from(xdg).join("minica")
        } else if let Some(home) = env("HOME") {
            PathBuf::from(home).join(".local/share/minica")
        } else {
            return Err(Error::NoHomeDirectory);
        };
        Ok(Self::new(dir))
    }

    /// Sets how long to wait for another process's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long to wait for another process's lock.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.json`: the CA settings; its presence means a CA exists.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("ca.json")
    }

    /// `root.pem`.
    pub fn root_cert_path(&self) -> PathBuf {
        self.dir.join("root.pem")
    }

    /// `root-key.pem`.
    pub fn root_key_path(&self) -> PathBuf {
        self.dir.join("root-key.pem")
    }

    /// `intermediate.pem`.
    pub fn intermediate_cert_path(&self) -> PathBuf {
        self.dir.join("intermediate.pem")
    }

    /// `intermediate-key.pem`.
    pub fn intermediate_key_path(&self) -> PathBuf {
        self.dir.join("intermediate-key.pem")
    }

    /// `bundle.pem`: the trust bundle.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join("bundle.pem")
    }

    /// `ledger.redb`: the embedded ledger.
    pub fn ledger_path(&self) -> PathBuf {
        self.dir.join("ledger.redb")
    }

    /// `ledger/`: the sled ledger of earlier versions, imported into
    /// [`CaHome::ledger_path`] on first use.
    pub fn sled_ledger_path(&self) -> PathBuf {
        self.dir.join("ledger")
    }

    /// `crl.pem`: the current CRL of every issuing CA and of the root
    /// (PEM, intermediates first, the root's last).
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// `lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// `serve.sock`: the Unix socket of a running `minica serve` (mode
    /// 0600), through which the CLI uses the ledger while the server holds
    /// the home.
    pub fn serve_socket_path(&self) -> PathBuf {
        self.dir.join(SERVE_SOCKET)
    }

    /// True when a CA has been created here.
    pub fn has_ca(&self) -> bool {
        self.config_path().is_file()
    }

    /// Creates the directory (0700) if needed and tightens an existing one
    /// that others could enter.
    pub fn create(&self) -> Result<(), Error> {
        minica_pki::atomic::create_private_dir(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(&self.dir).map_err(|e| io_err(&self.dir, e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_err(&self.dir, e))?;
            }
        }
        Ok(())
    }
}

/// Refuses a key file that group or others may read or write.
pub(crate) fn check_private_mode(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecureKeyFile {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_home_wins() {
        let home = CaHome::resolve(Some(Path::new("/tmp/x"))).unwrap();
        assert_eq!(home.dir(), Path::new("/tmp/x"));
        assert_eq!(home.root_key_path(), Path::new("/tmp/x/root-key.pem"));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_readable_key_and_creates_a_private_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path().join("h"));
        home.create().unwrap();
        let mode = std::fs::metadata(home.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let key = home.root_key_path();
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_private_mode(&key).unwrap_err().to_string();
        assert!(
            err.contains("root-key.pem") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private_mode(&key).unwrap();
    }
}
