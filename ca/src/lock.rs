//! The home's exclusive lock: one process at a time uses a CA.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{io_err, Error};

/// How often a waiting process retries the lock.
const POLL: Duration = Duration::from_millis(20);

/// An exclusive `flock` on the home's `lock` file, released on drop (also
/// when the process dies, so a crash never leaves the CA locked).
#[derive(Debug)]
pub(crate) struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// Takes the lock, waiting up to `timeout` for another holder. Says once
    /// on stderr that it is waiting, so a user knows why nothing happens.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, Error> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| io_err(path, e))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            let locked =
                fs4::fs_std::FileExt::try_lock_exclusive(&file).map_err(|e| io_err(path, e))?;
            if locked {
                return Ok(HomeLock { _file: file });
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    waited,
                });
            }
            if !told && waited >= Duration::from_millis(500) {
                eprintln!(
                    "minica: waiting for {} (another minica process is using this CA)",
                    path.display()
                );
                told = true;
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_times_out_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = HomeLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = HomeLock::acquire(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        drop(first);
        HomeLock::acquire(&path, Duration::from_millis(50)).unwrap();
    }
}
