//! The sled engine for the ledger.
//!
//! One sled tree with prefixed keys, so that a batch (records and their name
//! index together) is applied atomically with one `apply_batch`:
//! - `c/<serial>` → the record as JSON;
//! - `n/<lowercase name>\0<serial>` → empty (name index);
//! - `k/<issuer serial>` → the last CRL number, 8 bytes big-endian.

use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::record::CertRecord;
use crate::serial::Serial;
use crate::store::Store;

const RECORD: &[u8] = b"c/";
const NAME: &[u8] = b"n/";
const CRL_NUMBER: &[u8] = b"k/";

/// The ledger in a sled database directory.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
}

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + rest.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(rest);
    k
}

fn name_prefix(name: &str) -> Vec<u8> {
    let mut k = key(NAME, name.to_ascii_lowercase().as_bytes());
    k.push(0);
    k
}

impl SledStore {
    /// Opens (or creates) the ledger in `path`. The caller holds the CA
    /// home's lock; sled also refuses a second opener in another process.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Every write is flushed explicitly before it is reported (see
        // `commit`), so sled's background flusher thread is not needed.
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .map_err(|source| StoreError::Sled {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(SledStore {
            db,
            path: path.to_path_buf(),
        })
    }

    fn sled_err(&self) -> impl FnOnce(sled::Error) -> StoreError + '_ {
        move |source| StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn decode(k: &[u8], v: &[u8]) -> Result<CertRecord, StoreError> {
        serde_json::from_slice(v).map_err(|source| StoreError::Corrupt {
            key: String::from_utf8_lossy(k).into_owned(),
            source,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(self.sled_err())
    }
}

impl Store for SledStore {
    fn commit(&self, new: &[CertRecord], updated: &[CertRecord]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut seen = std::collections::HashSet::new();
        for rec in new {
            let k = key(RECORD, rec.serial.as_bytes());
            if !seen.insert(rec.serial.clone())
                || self.db.contains_key(&k).map_err(self.sled_err())?
            {
                return Err(StoreError::SerialExists(rec.serial.to_hex()));
            }
            let v = serde_json::to_vec(rec).map_err(StoreError::Encode)?;
            batch.insert(k, v);
            let mut n = name_prefix(&rec.name);
            n.extend_from_slice(rec.serial.as_bytes());
            batch.insert(n, &[] as &[u8]);
        }
        for rec in updated {
            let k = key(RECORD, rec.serial.as_bytes());
            if !self.db.contains_key(&k).map_err(self.sled_err())? {
                return Err(StoreError::NotFound(rec.serial.to_hex()));
            }
            let v = serde_json::to_vec(rec).map_err(StoreError::Encode)?;
            batch.insert(k, v);
        }
        self.db.apply_batch(batch).map_err(self.sled_err())?;
        self.flush()
    }

    fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        let k = key(RECORD, serial.as_bytes());
        match self.db.get(&k).map_err(self.sled_err())? {
            Some(v) => Ok(Some(Self::decode(&k, &v)?)),
            None => Ok(None),
        }
    }

    fn by_name(&self, name: &str) -> Result<Vec<CertRecord>, StoreError> {
        let prefix = name_prefix(name);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(&prefix) {
            let (k, _) = item.map_err(self.sled_err())?;
            let serial = Serial::from_bytes(&k[prefix.len()..]);
            if let Some(rec) = self.get(&serial)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn all(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.db
            .scan_prefix(RECORD)
            .map(|item| {
                let (k, v) = item.map_err(self.sled_err())?;
                Self::decode(&k, &v)
            })
            .collect()
    }

    fn next_crl_number(&self, issuer: &Serial) -> Result<u64, StoreError> {
        let k = key(CRL_NUMBER, issuer.as_bytes());
        let new = self
            .db
            .update_and_fetch(&k, |old| {
                let n = old.map(decode_u64).unwrap_or(0).saturating_add(1);
                Some(n.to_be_bytes().to_vec())
            })
            .map_err(self.sled_err())?;
        self.flush()?;
        Ok(new.as_deref().map(decode_u64).unwrap_or(1))
    }

    fn crl_number(&self, issuer: &Serial) -> Result<Option<u64>, StoreError> {
        let k = key(CRL_NUMBER, issuer.as_bytes());
        Ok(self
            .db
            .get(&k)
            .map_err(self.sled_err())?
            .as_deref()
            .map(decode_u64))
    }
}

fn decode_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_the_store_contract_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let written = {
            let store = SledStore::open(&path).unwrap();
            crate::store::contract::check(&store)
        };
        let store = SledStore::open(&path).unwrap();
        crate::store::contract::check_after_reopen(&store, &written);
    }
}
