//! A [`Store`] in another process, reached over a Unix socket.
//!
//! While `minica serve` runs on the embedded (redb) ledger it holds the CA
//! home, and the embedded ledger admits one process. The CLI then uses the ledger through
//! the server: the server listens on `<home>/serve.sock` (mode 0600, made
//! with [`bind_private`]) and answers each connection with
//! [`serve_connection`] on a blocking thread; the CLI opens the CA with
//! [`crate::Ca::open_shared`] and a [`RemoteStore`].
//!
//! # Protocol
//! One JSON object per line in each direction, strictly request then
//! answer, on one connection. A request is `{"op": "...", ...}` (see
//! `Request`); an answer is `{"ok": VALUE}` or `{"err": {"kind": K,
//! "message": M}}`. `kind` is `serial_exists`, `not_found`, `token_exists`
//! or `name_active` (with a `name` field) for the errors the CA logic
//! matches on (they come back as the same [`StoreError`] variant) and
//! `other` for the rest (they come back
//! as [`StoreError::Remote`] with the server's message). Only the socket's
//! owner can connect (0600 in a 0700 home): the peer is trusted like the
//! ledger files themselves, but its lines are still bounded in size.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::record::{CertRecord, Revocation};
use crate::serial::Serial;
use crate::store::Store;
use crate::token::{TokenRecord, TokenUse};

/// Longest line either side accepts (a commit of a large batch, or every
/// record of a large ledger, is one line).
const MAX_LINE: u64 = 512 * 1024 * 1024;

/// How long the client waits for an answer. Every store call takes
/// milliseconds; reading a very large ledger takes seconds.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Commit {
        new: Vec<CertRecord>,
        updated: Vec<CertRecord>,
    },
    CommitLeaf {
        new: Box<CertRecord>,
        replaced: Option<Box<CertRecord>>,
        /// Unix seconds and nanoseconds of `now`.
        secs: i64,
        nanos: u32,
    },
    Get {
        serial: Serial,
    },
    ByName {
        name: String,
    },
    All,
    NextCrlNumber {
        issuer: Serial,
    },
    CrlNumber {
        issuer: Serial,
    },
    RevokedBy {
        issuer: Serial,
    },
    PutToken {
        token: TokenRecord,
    },
    GetToken {
        hash: String,
    },
    ConsumeTokenAndInsert {
        hash: String,
        /// Unix seconds and nanoseconds of `now`.
        secs: i64,
        nanos: u32,
        new: Box<CertRecord>,
    },
    ConsumeToken {
        hash: String,
        /// Unix seconds and nanoseconds of `now`.
        secs: i64,
        nanos: u32,
    },
}

/// [`TokenUse`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireTokenUse {
    Consumed(TokenRecord),
    Unknown,
    AlreadyUsed(TokenRecord),
    Expired(TokenRecord),
}

impl From<TokenUse> for WireTokenUse {
    fn from(u: TokenUse) -> Self {
        match u {
            TokenUse::Consumed(r) => WireTokenUse::Consumed(r),
            TokenUse::Unknown => WireTokenUse::Unknown,
            TokenUse::AlreadyUsed(r) => WireTokenUse::AlreadyUsed(r),
            TokenUse::Expired(r) => WireTokenUse::Expired(r),
        }
    }
}

impl From<WireTokenUse> for TokenUse {
    fn from(u: WireTokenUse) -> Self {
        match u {
            WireTokenUse::Consumed(r) => TokenUse::Consumed(r),
            WireTokenUse::Unknown => TokenUse::Unknown,
            WireTokenUse::AlreadyUsed(r) => TokenUse::AlreadyUsed(r),
            WireTokenUse::Expired(r) => TokenUse::Expired(r),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ErrorKind {
    SerialExists,
    NotFound,
    TokenExists,
    NameActive,
    Other,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireError {
    kind: ErrorKind,
    message: String,
    /// The name, for `name_active` (whose message is the serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer<T> {
    Ok(T),
    Err(WireError),
}

fn to_wire(err: &StoreError) -> WireError {
    if let StoreError::NameActive { name, serial } = err {
        return WireError {
            kind: ErrorKind::NameActive,
            message: serial.clone(),
            name: Some(name.clone()),
        };
    }
    let (kind, message) = match err {
        StoreError::SerialExists(s) => (ErrorKind::SerialExists, s.clone()),
        StoreError::NotFound(s) => (ErrorKind::NotFound, s.clone()),
        StoreError::TokenExists(s) => (ErrorKind::TokenExists, s.clone()),
        other => {
            // The whole chain, as one line.
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            (ErrorKind::Other, msg)
        }
    };
    WireError {
        kind,
        message,
        name: None,
    }
}

fn from_wire(err: WireError) -> StoreError {
    match err.kind {
        ErrorKind::SerialExists => StoreError::SerialExists(err.message),
        ErrorKind::NotFound => StoreError::NotFound(err.message),
        ErrorKind::TokenExists => StoreError::TokenExists(err.message),
        ErrorKind::NameActive => StoreError::NameActive {
            name: err.name.unwrap_or_default(),
            serial: err.message,
        },
        ErrorKind::Other => StoreError::Remote(format!("minica serve: {}", err.message)),
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at a clean EOF.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let n = reader.by_ref().take(MAX_LINE).read_line(&mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long or cut short",
        ));
    }
    Ok(Some(line))
}

/// The ledger of another process (a running `minica serve`), reached over
/// its Unix socket. One connection, used by one call at a time.
#[derive(Debug)]
pub struct RemoteStore {
    path: PathBuf,
    conn: Mutex<Conn>,
}

#[derive(Debug)]
struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Set when a call failed half-way: the stream may be out of step.
    broken: bool,
}

impl RemoteStore {
    /// Connects to the socket at `socket_path` (e.g.
    /// [`crate::CaHome::serve_socket_path`]). Fails when nothing accepts
    /// there (no server running, or a stale socket file).
    pub fn connect(socket_path: &Path) -> Result<RemoteStore, StoreError> {
        let io = |source| StoreError::RemoteIo {
            path: socket_path.to_path_buf(),
            source,
        };
        let writer = UnixStream::connect(socket_path).map_err(io)?;
        writer.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
        let reader = BufReader::new(writer.try_clone().map_err(io)?);
        Ok(RemoteStore {
            path: socket_path.to_path_buf(),
            conn: Mutex::new(Conn {
                reader,
                writer,
                broken: false,
            }),
        })
    }

    /// The socket this store talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T: for<'de> Deserialize<'de>>(&self, request: &Request) -> Result<T, StoreError> {
        let io = |source| StoreError::RemoteIo {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(request).map_err(StoreError::Encode)?;
        line.push(b'\n');
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Remote("remote store connection poisoned".into()))?;
        if conn.broken {
            return Err(StoreError::Remote(format!(
                "{}: the connection failed earlier; reopen the CA",
                self.path.display()
            )));
        }
        // Marked broken until the whole answer is read.
        conn.broken = true;
        conn.writer.write_all(&line).map_err(io)?;
        conn.writer.flush().map_err(io)?;
        let answer = read_line(&mut conn.reader).map_err(io)?.ok_or_else(|| {
            StoreError::Remote(format!(
                "{}: minica serve closed the connection (did it stop?)",
                self.path.display()
            ))
        })?;
        conn.broken = false;
        drop(conn);
        let answer: Answer<T> = serde_json::from_str(&answer).map_err(|e| {
            StoreError::Remote(format!(
                "{}: not a valid answer from minica serve: {e}",
                self.path.display()
            ))
        })?;
        match answer {
            Answer::Ok(v) => Ok(v),
            Answer::Err(e) => Err(from_wire(e)),
        }
    }
}

impl Store for RemoteStore {
    fn commit(&self, new: &[CertRecord], updated: &[CertRecord]) -> Result<(), StoreError> {
        self.call(&Request::Commit {
            new: new.to_vec(),
            updated: updated.to_vec(),
        })
    }

    fn commit_leaf(
        &self,
        new: &CertRecord,
        replaced: Option<&CertRecord>,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.call(&Request::CommitLeaf {
            new: Box::new(new.clone()),
            replaced: replaced.map(|r| Box::new(r.clone())),
            secs: now.unix_timestamp(),
            nanos: now.nanosecond(),
        })
    }

    fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        self.call(&Request::Get {
            serial: serial.clone(),
        })
    }

    fn by_name(&self, name: &str) -> Result<Vec<CertRecord>, StoreError> {
        self.call(&Request::ByName {
            name: name.to_string(),
        })
    }

    fn all(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.call(&Request::All)
    }

    fn next_crl_number(&self, issuer: &Serial) -> Result<u64, StoreError> {
        self.call(&Request::NextCrlNumber {
            issuer: issuer.clone(),
        })
    }

    fn crl_number(&self, issuer: &Serial) -> Result<Option<u64>, StoreError> {
        self.call(&Request::CrlNumber {
            issuer: issuer.clone(),
        })
    }

    fn revoked_by(&self, issuer: &Serial) -> Result<Vec<(Serial, Revocation)>, StoreError> {
        self.call(&Request::RevokedBy {
            issuer: issuer.clone(),
        })
    }

    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.call(&Request::PutToken {
            token: token.clone(),
        })
    }

    fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.call(&Request::GetToken {
            hash: hash.to_string(),
        })
    }

    fn consume_token_and_insert(
        &self,
        hash: &str,
        now: time::OffsetDateTime,
        new: &CertRecord,
    ) -> Result<TokenUse, StoreError> {
        let used: WireTokenUse = self.call(&Request::ConsumeTokenAndInsert {
            hash: hash.to_string(),
            secs: now.unix_timestamp(),
            nanos: now.nanosecond(),
            new: Box::new(new.clone()),
        })?;
        Ok(used.into())
    }

    fn consume_token(&self, hash: &str, now: time::OffsetDateTime) -> Result<TokenUse, StoreError> {
        let used: WireTokenUse = self.call(&Request::ConsumeToken {
            hash: hash.to_string(),
            secs: now.unix_timestamp(),
            nanos: now.nanosecond(),
        })?;
        Ok(used.into())
    }
}

/// Answers one value or error as a JSON line.
fn answer<T: Serialize>(
    out: &mut impl Write,
    result: Result<T, StoreError>,
) -> std::io::Result<()> {
    let answer = match result {
        Ok(v) => Answer::Ok(v),
        Err(e) => Answer::Err(to_wire(&e)),
    };
    let mut line = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// The instant a client sent as Unix seconds and nanoseconds.
fn wire_time(secs: i64, nanos: u32) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.replace_nanosecond(nanos).ok())
        .ok_or_else(|| StoreError::Remote("invalid time in a token request".into()))
}

fn dispatch(store: &dyn Store, request: Request, out: &mut impl Write) -> std::io::Result<()> {
    match request {
        Request::Commit { new, updated } => answer(out, store.commit(&new, &updated)),
        Request::CommitLeaf {
            new,
            replaced,
            secs,
            nanos,
        } => answer(
            out,
            wire_time(secs, nanos)
                .and_then(|now| store.commit_leaf(&new, replaced.as_deref(), now)),
        ),
        Request::Get { serial } => answer(out, store.get(&serial)),
        Request::ByName { name } => answer(out, store.by_name(&name)),
        Request::All => answer(out, store.all()),
        Request::NextCrlNumber { issuer } => answer(out, store.next_crl_number(&issuer)),
        Request::CrlNumber { issuer } => answer(out, store.crl_number(&issuer)),
        Request::RevokedBy { issuer } => answer(out, store.revoked_by(&issuer)),
        Request::PutToken { token } => answer(out, store.put_token(&token)),
        Request::GetToken { hash } => answer(out, store.get_token(&hash)),
        Request::ConsumeToken { hash, secs, nanos } => answer(
            out,
            wire_time(secs, nanos)
                .and_then(|now| store.consume_token(&hash, now))
                .map(WireTokenUse::from),
        ),
        Request::ConsumeTokenAndInsert {
            hash,
            secs,
            nanos,
            new,
        } => answer(
            out,
            wire_time(secs, nanos)
                .and_then(|now| store.consume_token_and_insert(&hash, now, &new))
                .map(WireTokenUse::from),
        ),
    }
}

/// Answers the requests of one [`RemoteStore`] connection with `store`
/// until the client closes it (blocking: run it on a thread of its own, or
/// in `spawn_blocking`). A request that cannot be parsed gets an error
/// answer and the connection goes on; an I/O error ends it.
pub fn serve_connection(store: &dyn Store, stream: UnixStream) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(line) = read_line(&mut reader)? {
        match serde_json::from_str::<Request>(&line) {
            Ok(request) => dispatch(store, request, &mut out)?,
            Err(e) => answer::<()>(
                &mut out,
                Err(StoreError::Remote(format!("malformed request: {e}"))),
            )?,
        }
    }
    Ok(())
}

/// Binds the Unix socket at `path` for [`serve_connection`], readable and
/// writable by the owner only (mode 0600; the CA home is 0700 too, so the
/// socket is never reachable by others, even between bind and chmod). A
/// stale socket file (nothing accepts on it: a server that crashed) is
/// replaced; a live one is refused with `AddrInUse` (another server runs
/// on this home).
pub fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{}: another minica serve is already running on this CA home",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedbStore;
    use std::sync::Arc;

    /// An embedded store served on a socket by a thread (one thread per
    /// connection, as `minica serve` does).
    fn served(dir: &Path) -> (Arc<RedbStore>, PathBuf) {
        let store = Arc::new(RedbStore::open(&dir.join("ledger.redb")).unwrap());
        let sock = dir.join("serve.sock");
        let listener = bind_private(&sock).unwrap();
        let server = Arc::clone(&store);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let store = Arc::clone(&server);
                std::thread::spawn(move || serve_connection(store.as_ref(), stream));
            }
        });
        (store, sock)
    }

    #[test]
    fn meets_the_store_contract_through_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, sock) = served(dir.path());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let written = {
            let remote = RemoteStore::connect(&sock).unwrap();
            crate::store::contract::check(&remote)
        };
        let remote = RemoteStore::connect(&sock).unwrap();
        crate::store::contract::check_after_reopen(&remote, &written);
        // A second server on the same socket is refused; a stale one is
        // replaced.
        let err = bind_private(&sock).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        bind_private(&stale).unwrap();
    }

    #[test]
    fn garbage_gets_an_error_answer_and_the_connection_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, sock) = served(dir.path());
        let mut raw = UnixStream::connect(&sock).unwrap();
        raw.write_all(b"{\"op\":\"nope\"}\n").unwrap();
        let mut reader = BufReader::new(raw.try_clone().unwrap());
        let line = read_line(&mut reader).unwrap().unwrap();
        assert!(line.contains("malformed request"), "{line}");
        raw.write_all(b"{\"op\":\"all\"}\n").unwrap();
        let line = read_line(&mut reader).unwrap().unwrap();
        assert_eq!(line.trim(), "{\"ok\":[]}");
        assert!(RemoteStore::connect(&dir.path().join("none.sock")).is_err());
    }
}
