//! The embedded ledger engine: one redb file in the CA home
//! (`ledger.redb`).
//!
//! Why redb and not sled (which earlier versions used): see
//! `docs/ca-operations.md`, "Why redb". In short, a redb commit is one
//! copy-on-write update made durable by one `fsync`, and opening the file
//! after a crash falls back to the last commit whose checksum holds; sled
//! 0.34 could be left unopenable by a SIGKILL (our crash test hit sled
//! issue #1527), and its open starts background threads and reads a log.
//!
//! Tables:
//! - `records`: serial → the record as JSON;
//! - `names`: lowercase name → serials (multimap; the name index);
//! - `crl_numbers`: issuer serial → the last CRL number;
//! - `revoked`: issuer-length byte, issuer serial, serial → revocation time
//!   (i64 seconds, big-endian) and reason code: the CRL index, one entry
//!   per revoked certificate, so a revocation writes one entry and
//!   publishing a CRL reads one key range;
//! - `tokens`: token hash → the one-time token as JSON.
//!
//! Writers from several threads (a busy `minica serve`) share commits:
//! see [`GroupCommit`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition, WriteTransaction,
};

use crate::crl::RevocationReason;
use crate::error::StoreError;
use crate::record::{CertRecord, Revocation, Status};
use crate::serial::Serial;
use crate::store::Store;
use crate::token::{TokenRecord, TokenUse};

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const NAMES: MultimapTableDefinition<&str, &[u8]> = MultimapTableDefinition::new("names");
const CRL_NUMBERS: TableDefinition<&[u8], u64> = TableDefinition::new("crl_numbers");
const REVOKED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("revoked");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// The ledger in a redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    writes: GroupCommit,
}

/// One change to the ledger, applied inside a write transaction. Each
/// change makes every check before its first write, so a refusal leaves the
/// transaction as it was.
#[derive(Debug)]
pub(crate) enum Change {
    /// [`Store::commit`]; with `exclusive_at`, [`Store::commit_leaf`]: no
    /// new record may take a name that another leaf holds at that time.
    Commit {
        new: Vec<CertRecord>,
        updated: Vec<CertRecord>,
        exclusive_at: Option<time::OffsetDateTime>,
    },
    /// [`Store::next_crl_number`].
    NextCrlNumber(Serial),
    /// [`Store::put_token`].
    PutToken(TokenRecord),
    /// [`Store::consume_token`], with the record of
    /// [`Store::consume_token_and_insert`] when there is one.
    ConsumeToken {
        hash: String,
        now: time::OffsetDateTime,
        new: Option<CertRecord>,
    },
}

/// What a [`Change`] returns.
#[derive(Debug)]
pub(crate) enum Applied {
    Done,
    CrlNumber(u64),
    Token(TokenUse),
}

/// Group commit: when several threads write at once, the first becomes
/// the leader and applies every change queued so far in one write
/// transaction, made durable by one `fsync`; the others wait for their
/// result. A change that fails makes the leader abort that transaction and
/// apply the batch one change per transaction, so one refusal never fails
/// or undoes another writer's change. No result is handed out before the
/// commit that holds it is durable.
#[derive(Debug, Default)]
struct GroupCommit {
    state: Mutex<Queue>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    pending: Vec<(u64, Change)>,
    results: HashMap<u64, Result<Applied, StoreError>>,
    leader: bool,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `change` and returns its result once it is durable (or
    /// refused).
    fn submit(
        &self,
        change: Change,
        run: impl Fn(Vec<(u64, Change)>) -> Vec<(u64, Result<Applied, StoreError>)>,
    ) -> Result<Applied, StoreError> {
        let mut queue = self.lock();
        queue.next_ticket += 1;
        let ticket = queue.next_ticket;
        queue.pending.push((ticket, change));
        loop {
            if let Some(result) = queue.results.remove(&ticket) {
                return result;
            }
            if queue.leader {
                queue = self.done.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            queue.leader = true;
            let batch = std::mem::take(&mut queue.pending);
            let tickets: Vec<u64> = batch.iter().map(|(t, _)| *t).collect();
            drop(queue);
            // A panic must not leave the others waiting for a leader or a
            // result forever: they get an error, then the panic goes on.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(batch)));
            queue = self.lock();
            queue.leader = false;
            match ran {
                Ok(results) => queue.results.extend(results),
                Err(panic) => {
                    queue.results.extend(tickets.into_iter().map(|t| {
                        let failed = "internal error: the ledger writer panicked \
                                      (`minica list --all` shows what was recorded)";
                        (t, Err(StoreError::Remote(failed.to_string())))
                    }));
                    self.done.notify_all();
                    drop(queue);
                    std::panic::resume_unwind(panic);
                }
            }
            self.done.notify_all();
        }
    }
}

impl RedbStore {
    /// Opens (or creates) the ledger file at `path`. The caller holds the
    /// CA home's lock; redb also refuses a second opener.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        owner_only(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let db = Database::create(path).map_err(|e| redb_error(path, e))?;
        let store = RedbStore {
            db,
            path: path.to_path_buf(),
            writes: GroupCommit::default(),
        };
        // Every table exists from the first open on, so readers never meet
        // a missing one. Checked first: a commit costs an fsync, and every
        // `minica` process opens the ledger.
        let read = store.db.begin_read().map_err(|e| redb_error(path, e))?;
        let tables = read.list_tables().map_err(|e| redb_error(path, e))?.count()
            + read
                .list_multimap_tables()
                .map_err(|e| redb_error(path, e))?
                .count();
        drop(read);
        if tables < 5 {
            store.write(|tx| {
                tx.open_table(RECORDS)?;
                tx.open_multimap_table(NAMES)?;
                tx.open_table(CRL_NUMBERS)?;
                tx.open_table(REVOKED)?;
                tx.open_table(TOKENS)?;
                Ok(())
            })?;
        }
        Ok(store)
    }

    /// Maps any redb error to [`StoreError::Redb`] naming the ledger file.
    fn err<E: Into<redb::Error>>(&self) -> impl Fn(E) -> StoreError + '_ {
        move |e| redb_error(&self.path, e)
    }

    /// Runs `body` in one write transaction and commits it durably.
    fn write<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let tx = self.db.begin_write().map_err(self.err())?;
        let out = body(&tx).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    /// Applies `change` through the group commit.
    fn submit(&self, change: Change) -> Result<Applied, StoreError> {
        self.writes.submit(change, |batch| self.apply_batch(batch))
    }

    /// Applies a batch of changes: all in one transaction when every one
    /// succeeds, else each in its own.
    fn apply_batch(&self, batch: Vec<(u64, Change)>) -> Vec<(u64, Result<Applied, StoreError>)> {
        if batch.len() > 1 {
            if let Ok(results) = self.apply_together(&batch) {
                return batch
                    .iter()
                    .map(|(ticket, _)| *ticket)
                    .zip(results.into_iter().map(Ok))
                    .collect();
            }
        }
        batch
            .into_iter()
            .map(|(ticket, change)| (ticket, self.apply_alone(&change)))
            .collect()
    }

    fn apply_together(&self, batch: &[(u64, Change)]) -> Result<Vec<Applied>, StoreError> {
        let tx = self.db.begin_write().map_err(self.err())?;
        let results = batch
            .iter()
            .map(|(_, change)| self.apply(&tx, change))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(self.err())?;
        Ok(results)
    }

    fn apply_alone(&self, change: &Change) -> Result<Applied, StoreError> {
        let tx = self.db.begin_write().map_err(self.err())?;
        let result = self.apply(&tx, change)?;
        tx.commit().map_err(self.err())?;
        Ok(result)
    }

    /// Applies one change inside `tx`: every check first, then the writes.
    fn apply(&self, tx: &WriteTransaction, change: &Change) -> Result<Applied, StoreError> {
        match change {
            Change::Commit {
                new,
                updated,
                exclusive_at,
            } => {
                let mut records = tx.open_table(RECORDS).map_err(self.err())?;
                let mut names = tx.open_multimap_table(NAMES).map_err(self.err())?;
                let mut seen = HashSet::new();
                for rec in new {
                    let key = rec.serial.as_bytes();
                    if !seen.insert(key) || records.get(key).map_err(self.err())?.is_some() {
                        return Err(StoreError::SerialExists(rec.serial.to_hex()));
                    }
                }
                if let Some(now) = exclusive_at {
                    let replaced: HashSet<&[u8]> =
                        updated.iter().map(|r| r.serial.as_bytes()).collect();
                    for rec in new {
                        let name = rec.name.to_ascii_lowercase();
                        for serial in names.get(name.as_str()).map_err(self.err())? {
                            let serial = serial.map_err(self.err())?;
                            let key = serial.value();
                            if replaced.contains(key) {
                                continue;
                            }
                            let Some(v) = records.get(key).map_err(self.err())? else {
                                continue;
                            };
                            if crate::store::holds_name(&decode_record(key, v.value())?, *now) {
                                return Err(StoreError::NameActive {
                                    name: rec.name.clone(),
                                    serial: hex::encode(key),
                                });
                            }
                        }
                    }
                }
                // CRL index changes, (issuer, serial) → revocation or removal,
                // in order, so that the last change of a serial wins.
                let mut index: HashMap<Vec<u8>, Option<Revocation>> = HashMap::new();
                for rec in updated {
                    let key = rec.serial.as_bytes();
                    let old = match records.get(key).map_err(self.err())? {
                        Some(old) => decode_record(key, old.value())?,
                        None => return Err(StoreError::NotFound(rec.serial.to_hex())),
                    };
                    if revocation(&old).is_some() {
                        index.insert(index_key(&old.issuer_serial, &old.serial), None);
                    }
                }
                for rec in new {
                    if let Some(rev) = revocation(rec) {
                        index.insert(index_key(&rec.issuer_serial, &rec.serial), Some(rev));
                    }
                }
                for rec in updated {
                    index.insert(index_key(&rec.issuer_serial, &rec.serial), revocation(rec));
                }
                let values = new
                    .iter()
                    .chain(updated)
                    .map(|rec| serde_json::to_vec(rec).map_err(StoreError::Encode))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut revoked = tx.open_table(REVOKED).map_err(self.err())?;
                for (rec, value) in new.iter().chain(updated).zip(&values) {
                    records
                        .insert(rec.serial.as_bytes(), value.as_slice())
                        .map_err(self.err())?;
                }
                for rec in new {
                    names
                        .insert(
                            rec.name.to_ascii_lowercase().as_str(),
                            rec.serial.as_bytes(),
                        )
                        .map_err(self.err())?;
                }
                for (key, rev) in index {
                    match rev {
                        Some(rev) => {
                            revoked
                                .insert(key.as_slice(), encode_revocation(&rev).as_slice())
                                .map_err(self.err())?;
                        }
                        None => {
                            revoked.remove(key.as_slice()).map_err(self.err())?;
                        }
                    }
                }
                Ok(Applied::Done)
            }
            Change::NextCrlNumber(issuer) => {
                let mut numbers = tx.open_table(CRL_NUMBERS).map_err(self.err())?;
                let last = numbers
                    .get(issuer.as_bytes())
                    .map_err(self.err())?
                    .map(|v| v.value())
                    .unwrap_or(0);
                let next = last.saturating_add(1);
                numbers
                    .insert(issuer.as_bytes(), next)
                    .map_err(self.err())?;
                Ok(Applied::CrlNumber(next))
            }
            Change::PutToken(token) => {
                let mut tokens = tx.open_table(TOKENS).map_err(self.err())?;
                if tokens
                    .get(token.hash.as_str())
                    .map_err(self.err())?
                    .is_some()
                {
                    return Err(StoreError::TokenExists(token.hash.clone()));
                }
                let value = serde_json::to_vec(token).map_err(StoreError::Encode)?;
                tokens
                    .insert(token.hash.as_str(), value.as_slice())
                    .map_err(self.err())?;
                Ok(Applied::Done)
            }
            Change::ConsumeToken { hash, now, new } => {
                let mut tokens = tx.open_table(TOKENS).map_err(self.err())?;
                let record = match tokens.get(hash.as_str()).map_err(self.err())? {
                    Some(v) => decode_token(hash, v.value())?,
                    None => return Ok(Applied::Token(TokenUse::Unknown)),
                };
                if let Some(refusal) = record.refusal_at(*now) {
                    return Ok(Applied::Token(refusal));
                }
                let mut used = record;
                used.used = Some(*now);
                let value = serde_json::to_vec(&used).map_err(StoreError::Encode)?;
                if let Some(new) = new {
                    // Refuses a known serial before the token is written.
                    let record = Change::Commit {
                        new: vec![new.clone()],
                        updated: Vec::new(),
                        exclusive_at: Some(*now),
                    };
                    self.apply(tx, &record)?;
                }
                tokens
                    .insert(hash.as_str(), value.as_slice())
                    .map_err(self.err())?;
                Ok(Applied::Token(TokenUse::Consumed(used)))
            }
        }
    }

    fn read<T>(
        &self,
        body: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.db.begin_read().map_err(self.err())?;
        body(&tx)
    }
}

impl Store for RedbStore {
    fn commit(&self, new: &[CertRecord], updated: &[CertRecord]) -> Result<(), StoreError> {
        self.submit(Change::Commit {
            new: new.to_vec(),
            updated: updated.to_vec(),
            exclusive_at: None,
        })
        .map(|_| ())
    }

    fn commit_leaf(
        &self,
        new: &CertRecord,
        replaced: Option<&CertRecord>,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.submit(Change::Commit {
            new: vec![new.clone()],
            updated: replaced.into_iter().cloned().collect(),
            exclusive_at: Some(now),
        })
        .map(|_| ())
    }

    fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        self.read(|tx| {
            let records = tx.open_table(RECORDS).map_err(self.err())?;
            let key = serial.as_bytes();
            match records.get(key).map_err(self.err())? {
                Some(v) => Ok(Some(decode_record(key, v.value())?)),
                None => Ok(None),
            }
        })
    }

    fn by_name(&self, name: &str) -> Result<Vec<CertRecord>, StoreError> {
        self.read(|tx| {
            let names = tx.open_multimap_table(NAMES).map_err(self.err())?;
            let records = tx.open_table(RECORDS).map_err(self.err())?;
            let mut out = Vec::new();
            for serial in names
                .get(name.to_ascii_lowercase().as_str())
                .map_err(self.err())?
            {
                let serial = serial.map_err(self.err())?;
                let key = serial.value();
                if let Some(v) = records.get(key).map_err(self.err())? {
                    out.push(decode_record(key, v.value())?);
                }
            }
            Ok(out)
        })
    }

    fn all(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.read(|tx| {
            let records = tx.open_table(RECORDS).map_err(self.err())?;
            let mut out = Vec::new();
            for item in records.iter().map_err(self.err())? {
                let (k, v) = item.map_err(self.err())?;
                out.push(decode_record(k.value(), v.value())?);
            }
            Ok(out)
        })
    }

    fn next_crl_number(&self, issuer: &Serial) -> Result<u64, StoreError> {
        match self.submit(Change::NextCrlNumber(issuer.clone()))? {
            Applied::CrlNumber(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    fn crl_number(&self, issuer: &Serial) -> Result<Option<u64>, StoreError> {
        self.read(|tx| {
            let numbers = tx.open_table(CRL_NUMBERS).map_err(self.err())?;
            let n = numbers
                .get(issuer.as_bytes())
                .map_err(self.err())?
                .map(|v| v.value());
            Ok(n)
        })
    }

    fn revoked_by(&self, issuer: &Serial) -> Result<Vec<(Serial, Revocation)>, StoreError> {
        self.read(|tx| {
            let revoked = tx.open_table(REVOKED).map_err(self.err())?;
            let prefix = index_prefix(issuer);
            let mut out = Vec::new();
            for item in revoked.range(prefix.as_slice()..).map_err(self.err())? {
                let (k, v) = item.map_err(self.err())?;
                let Some(serial) = k.value().strip_prefix(prefix.as_slice()) else {
                    break;
                };
                out.push((
                    Serial::from_bytes(serial),
                    decode_revocation(k.value(), v.value())?,
                ));
            }
            Ok(out)
        })
    }

    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.submit(Change::PutToken(token.clone())).map(|_| ())
    }

    fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|tx| {
            let tokens = tx.open_table(TOKENS).map_err(self.err())?;
            match tokens.get(hash).map_err(self.err())? {
                Some(v) => Ok(Some(decode_token(hash, v.value())?)),
                None => Ok(None),
            }
        })
    }

    fn consume_token(&self, hash: &str, now: time::OffsetDateTime) -> Result<TokenUse, StoreError> {
        self.consume(hash, now, None)
    }

    fn consume_token_and_insert(
        &self,
        hash: &str,
        now: time::OffsetDateTime,
        new: &CertRecord,
    ) -> Result<TokenUse, StoreError> {
        self.consume(hash, now, Some(new.clone()))
    }
}

impl RedbStore {
    fn consume(
        &self,
        hash: &str,
        now: time::OffsetDateTime,
        new: Option<CertRecord>,
    ) -> Result<TokenUse, StoreError> {
        match self.submit(Change::ConsumeToken {
            hash: hash.to_string(),
            now,
            new,
        })? {
            Applied::Token(used) => Ok(used),
            other => Err(unexpected(other)),
        }
    }

    /// Writes every record, token and CRL number of another ledger into this
    /// (empty) one in one durable commit: the import of a sled ledger.
    pub(crate) fn import(
        &self,
        records: &[CertRecord],
        tokens: &[TokenRecord],
        crl_numbers: &[(Serial, u64)],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(self.err())?;
        self.apply(
            &tx,
            &Change::Commit {
                new: records.to_vec(),
                updated: Vec::new(),
                exclusive_at: None,
            },
        )?;
        for token in tokens {
            self.apply(&tx, &Change::PutToken(token.clone()))?;
        }
        {
            let mut numbers = tx.open_table(CRL_NUMBERS).map_err(self.err())?;
            for (issuer, n) in crl_numbers {
                numbers.insert(issuer.as_bytes(), *n).map_err(self.err())?;
            }
        }
        tx.commit().map_err(self.err())
    }
}

/// Creates the ledger file readable and writable by its owner only (0600),
/// like the CA's keys (it holds token hashes and every certificate's
/// record), or takes away what group and others may do with an existing
/// one.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

fn redb_error(path: &Path, source: impl Into<redb::Error>) -> StoreError {
    StoreError::Redb {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// A reply of the wrong kind: a bug in this module, reported, not a panic.
fn unexpected(applied: Applied) -> StoreError {
    StoreError::Remote(format!(
        "internal error: unexpected ledger reply {applied:?}"
    ))
}

fn revocation(rec: &CertRecord) -> Option<Revocation> {
    match rec.status {
        Status::Revoked => rec.revocation.clone(),
        _ => None,
    }
}

fn decode_record(key: &[u8], value: &[u8]) -> Result<CertRecord, StoreError> {
    serde_json::from_slice(value).map_err(|source| StoreError::Corrupt {
        key: format!("records/{}", hex::encode(key)),
        source,
    })
}

fn decode_token(hash: &str, value: &[u8]) -> Result<TokenRecord, StoreError> {
    serde_json::from_slice(value).map_err(|source| StoreError::Corrupt {
        key: format!("tokens/{hash}"),
        source,
    })
}

/// The CRL index key prefix of `issuer`: its length (serials are at most
/// 20 octets, RFC 5280), then its bytes.
fn index_prefix(issuer: &Serial) -> Vec<u8> {
    let bytes = issuer.as_bytes();
    let bytes = &bytes[..bytes.len().min(255)];
    let mut key = Vec::with_capacity(1 + bytes.len() + 20);
    key.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    key.extend_from_slice(bytes);
    key
}

fn index_key(issuer: &Serial, serial: &Serial) -> Vec<u8> {
    let mut key = index_prefix(issuer);
    key.extend_from_slice(serial.as_bytes());
    key
}

fn encode_revocation(rev: &Revocation) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[..8].copy_from_slice(&rev.at.unix_timestamp().to_be_bytes());
    out[8] = rev.reason.code();
    out
}

fn decode_revocation(key: &[u8], value: &[u8]) -> Result<Revocation, StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: format!("revoked/{}", hex::encode(key)),
        source: serde::de::Error::custom("invalid CRL index entry"),
    };
    let (at, reason) = match value {
        [at @ .., reason] if at.len() == 8 => (at, *reason),
        _ => return Err(corrupt()),
    };
    let at = <[u8; 8]>::try_from(at).map_err(|_| corrupt())?;
    let at =
        time::OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(at)).map_err(|_| corrupt())?;
    let reason = RevocationReason::from_code(reason).ok_or_else(corrupt)?;
    Ok(Revocation { at, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_the_store_contract_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let written = {
            let store = RedbStore::open(&path).unwrap();
            crate::store::contract::check(&store)
        };
        let store = RedbStore::open(&path).unwrap();
        crate::store::contract::check_after_reopen(&store, &written);
    }

    #[test]
    fn concurrent_writers_share_commits_and_keep_every_result_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("ledger.redb")).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let token = TokenRecord {
            hash: "t".into(),
            name: "x".into(),
            sans: vec![],
            created: now,
            expires: now + time::Duration::minutes(5),
            used: None,
        };
        store.put_token(&token).unwrap();
        let taken = Serial::random();
        let mut first = crate::store::contract::sample("taken");
        first.serial = taken.clone();
        store.insert(&[first.clone()]).unwrap();
        let consumed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (store, consumed, first) = (&store, &consumed, &first);
                scope.spawn(move || {
                    for j in 0..25 {
                        let rec = crate::store::contract::sample(&format!("n{i}-{j}"));
                        store.insert(std::slice::from_ref(&rec)).unwrap();
                        // A refused change in the same batch changes nothing else.
                        let err = store.insert(std::slice::from_ref(first)).unwrap_err();
                        assert!(matches!(err, StoreError::SerialExists(_)), "{err}");
                        let now = time::OffsetDateTime::now_utc();
                        if let TokenUse::Consumed(_) = store.consume_token("t", now).unwrap() {
                            consumed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(consumed.into_inner(), 1, "one token, consumed once");
        assert_eq!(store.all().unwrap().len(), 8 * 25 + 1);
        assert_eq!(store.by_name("N3-7").unwrap().len(), 1);
    }

    #[test]
    fn the_ledger_file_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(RedbStore::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        // One left readable by others (an older version, a copy) is tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(store.all().unwrap().is_empty());
    }

    #[test]
    fn a_panicking_batch_leaves_the_group_commit_usable() {
        let gate = GroupCommit::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gate.submit(Change::NextCrlNumber(Serial::random()), |_| {
                panic!("simulated bug in a change")
            })
        }));
        assert!(panicked.is_err());
        let applied = gate
            .submit(Change::NextCrlNumber(Serial::random()), |batch| {
                batch
                    .into_iter()
                    .map(|(t, _)| (t, Ok(Applied::CrlNumber(7))))
                    .collect()
            })
            .unwrap();
        assert!(matches!(applied, Applied::CrlNumber(7)), "{applied:?}");
    }

    #[test]
    fn of_concurrent_leaves_for_one_name_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("ledger.redb")).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let won = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let mut leaf = crate::store::contract::sample("svc");
                    leaf.not_after = now + time::Duration::days(1);
                    match store.commit_leaf(&leaf, None, now) {
                        Ok(()) => {
                            won.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(StoreError::NameActive { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                });
            }
        });
        assert_eq!(won.into_inner(), 1);
        assert_eq!(store.by_name("svc").unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_crl_index_entry_is_reported_not_trusted() {
        let err = decode_revocation(b"k", &[0; 3]).unwrap_err();
        assert!(err.to_string().contains("revoked/6b"), "{err}");
        let mut bad_reason = [0u8; 9];
        bad_reason[8] = 200;
        assert!(decode_revocation(b"k", &bad_reason).is_err());
        let rev = Revocation {
            at: time::OffsetDateTime::from_unix_timestamp(1_770_000_000).unwrap(),
            reason: RevocationReason::KeyCompromise,
        };
        assert_eq!(
            decode_revocation(b"k", &encode_revocation(&rev)).unwrap(),
            rev
        );
    }
}
