//! The ledger socket (`<home>/serve.sock`, 0600): while `minica serve`
//! holds the embedded ledger, other `minica` commands on the same home use
//! it through this socket (see [`minica_ca::store::remote`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minica_ca::Ca;

use crate::error::Error;

/// Removes the socket file when the server stops.
#[derive(Debug)]
pub(crate) struct SocketGuard {
    path: PathBuf,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket and answers every connection on a thread of its own
/// (the store is blocking), for the life of the process.
pub(crate) fn serve_store(ca: Arc<Ca>, path: &Path) -> Result<SocketGuard, Error> {
    let listener = minica_ca::store::bind_private(path).map_err(|source| Error::Socket {
        path: path.to_path_buf(),
        source,
    })?;
    let guard = SocketGuard {
        path: path.to_path_buf(),
    };
    let spawned = std::thread::Builder::new()
        .name("ledger-socket".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "ledger socket accept failed");
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        continue;
                    }
                };
                let ca = ca.clone();
                let _ = std::thread::Builder::new()
                    .name("ledger-client".into())
                    .spawn(move || {
                        if let Err(e) = minica_ca::store::serve_connection(ca.store(), stream) {
                            tracing::debug!(error = %e, "ledger socket connection ended");
                        }
                    });
            }
        });
    spawned.map_err(|source| Error::Socket {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(guard)
}
