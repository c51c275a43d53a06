//! Import of a sled ledger, the embedded engine of earlier versions.
//!
//! Earlier versions kept the ledger in a sled database in `<home>/ledger/`.
//! The first time a CA home with such a ledger is opened, every record,
//! one-time token and CRL number in it is copied into a new redb file in
//! one commit, and the sled directory is renamed `ledger.sled-imported/`
//! (kept, never read again; delete it once the CA works). Order, so that a
//! crash at any point loses nothing:
//! 1. read the whole sled ledger;
//! 2. write `ledger.redb.importing` (removed first if an earlier import was
//!    cut short) and commit it durably;
//! 3. rename it to `ledger.redb` and sync the home: from here on the redb
//!    file is the ledger;
//! 4. rename `ledger/` to `ledger.sled-imported/`.
//!
//! The sled layout read here (one tree, prefixed keys): `c/<serial>` → a
//! record as JSON; `t/<token hash>` → a token as JSON; `k/<issuer serial>`
//! → the last CRL number, 8 bytes big-endian. The name index (`n/`) and the
//! CRL index (`r/`) are rebuilt from the records.

use std::path::Path;

use crate::error::StoreError;
use crate::record::CertRecord;
use crate::serial::Serial;
use crate::store::RedbStore;
use crate::token::TokenRecord;

const RECORD: &[u8] = b"c/";
const CRL_NUMBER: &[u8] = b"k/";
const TOKEN: &[u8] = b"t/";

/// The directory name a sled ledger gets once imported.
pub const IMPORTED_SLED_DIR: &str = "ledger.sled-imported";

/// Everything a sled ledger holds that the redb ledger keeps.
#[derive(Debug, Default)]
struct SledLedger {
    records: Vec<CertRecord>,
    tokens: Vec<TokenRecord>,
    crl_numbers: Vec<(Serial, u64)>,
}

/// Imports the sled ledger in `sled_dir` into a new redb ledger at
/// `redb_path` (see the module documentation), then renames `sled_dir`.
/// Returns how many records were imported.
pub fn import_sled_ledger(sled_dir: &Path, redb_path: &Path) -> Result<usize, StoreError> {
    let ledger = read_sled(sled_dir)?;
    let staging = redb_path.with_extension("redb.importing");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    match std::fs::remove_file(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&staging)(e)),
        _ => {}
    }
    {
        let store = RedbStore::open(&staging)?;
        store.import(&ledger.records, &ledger.tokens, &ledger.crl_numbers)?;
    }
    std::fs::rename(&staging, redb_path).map_err(io(redb_path))?;
    let home = redb_path.parent().unwrap_or(Path::new("."));
    sync_dir(home).map_err(io(home))?;
    let imported = home.join(IMPORTED_SLED_DIR);
    std::fs::rename(sled_dir, &imported).map_err(io(sled_dir))?;
    sync_dir(home).map_err(io(home))?;
    Ok(ledger.records.len())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn read_sled(dir: &Path) -> Result<SledLedger, StoreError> {
    remove_unfinished_snapshots(dir);
    let sled_err = |source| StoreError::Sled {
        path: dir.to_path_buf(),
        source,
    };
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .map_err(sled_err)?;
    let corrupt = |k: &[u8], source| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        source,
    };
    let mut ledger = SledLedger::default();
    for item in db.scan_prefix(RECORD) {
        let (k, v) = item.map_err(sled_err)?;
        ledger
            .records
            .push(serde_json::from_slice(&v).map_err(|e| corrupt(&k, e))?);
    }
    for item in db.scan_prefix(TOKEN) {
        let (k, v) = item.map_err(sled_err)?;
        ledger
            .tokens
            .push(serde_json::from_slice(&v).map_err(|e| corrupt(&k, e))?);
    }
    for item in db.scan_prefix(CRL_NUMBER) {
        let (k, v) = item.map_err(sled_err)?;
        let n = <[u8; 8]>::try_from(v.as_ref()).map_err(|_| {
            corrupt(
                &k,
                serde::de::Error::custom("a CRL number is not 8 bytes long"),
            )
        })?;
        ledger.crl_numbers.push((
            Serial::from_bytes(&k[CRL_NUMBER.len()..]),
            u64::from_be_bytes(n),
        ));
    }
    Ok(ledger)
}

/// sled 0.34 writes a snapshot to `snap.<lsn>.generating`, syncs it, then
/// renames it to `snap.<lsn>`; but on open it reads the last `snap.*` name
/// in sort order, `.generating` files included. A process killed while
/// writing one leaves an empty or partial file that makes every later open
/// fail with "Read corrupted data" (sled issue #1527, found by our crash
/// test). Such a file is never a snapshot sled finished: without it, sled
/// recovers from the previous snapshot and the log. Best effort: if the
/// file cannot be removed, sled's own error is reported.
fn remove_unfinished_snapshots(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// True when `sled_dir` holds a sled ledger of an earlier version still to
/// import: it is there and the redb ledger is not.
pub fn needs_sled_import(sled_dir: &Path, redb_path: &Path) -> bool {
    sled_dir.is_dir() && !redb_path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Revocation, Status};
    use crate::store::Store;

    /// Writes a ledger in the layout earlier versions of minica wrote.
    fn write_sled(dir: &Path, records: &[CertRecord], token: &TokenRecord, crl: (&Serial, u64)) {
        let db = sled::open(dir).unwrap();
        for rec in records {
            let mut k = RECORD.to_vec();
            k.extend_from_slice(rec.serial.as_bytes());
            db.insert(k, serde_json::to_vec(rec).unwrap()).unwrap();
            let mut n = b"n/".to_vec();
            n.extend_from_slice(rec.name.to_ascii_lowercase().as_bytes());
            n.push(0);
            n.extend_from_slice(rec.serial.as_bytes());
            db.insert(n, &[] as &[u8]).unwrap();
        }
        let mut k = TOKEN.to_vec();
        k.extend_from_slice(token.hash.as_bytes());
        db.insert(k, serde_json::to_vec(token).unwrap()).unwrap();
        let mut k = CRL_NUMBER.to_vec();
        k.extend_from_slice(crl.0.as_bytes());
        db.insert(k, &crl.1.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn a_sled_ledger_is_imported_whole_once() {
        let home = tempfile::tempdir().unwrap();
        let sled_dir = home.path().join("ledger");
        let redb_path = home.path().join("ledger.redb");
        let mut revoked = crate::store::contract::sample("gone");
        revoked.status = Status::Revoked;
        revoked.revocation = Some(Revocation {
            at: time::OffsetDateTime::from_unix_timestamp(1_770_000_000).unwrap(),
            reason: crate::crl::RevocationReason::KeyCompromise,
        });
        let active = crate::store::contract::sample("Svc-A");
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let token = TokenRecord {
            hash: "abc".into(),
            name: "svc-t".into(),
            sans: vec![],
            created: now,
            expires: now + time::Duration::hours(1),
            used: None,
        };
        let issuer = Serial::random();
        write_sled(
            &sled_dir,
            &[revoked.clone(), active.clone()],
            &token,
            (&issuer, 7),
        );
        // An unfinished snapshot left by a SIGKILL (sled #1527) does not
        // stop the import.
        std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFF0.generating"), b"").unwrap();

        assert!(needs_sled_import(&sled_dir, &redb_path));
        assert_eq!(import_sled_ledger(&sled_dir, &redb_path).unwrap(), 2);
        assert!(!sled_dir.exists());
        assert!(home.path().join(IMPORTED_SLED_DIR).is_dir());
        assert!(!home.path().join("ledger.redb.importing").exists());
        assert!(!needs_sled_import(&sled_dir, &redb_path));

        let store = RedbStore::open(&redb_path).unwrap();
        assert_eq!(store.all().unwrap().len(), 2);
        assert_eq!(store.by_name("svc-a").unwrap(), vec![active]);
        assert_eq!(
            store.revoked_by(&revoked.issuer_serial).unwrap(),
            vec![(revoked.serial.clone(), revoked.revocation.clone().unwrap())]
        );
        assert_eq!(store.get_token("abc").unwrap(), Some(token));
        assert_eq!(store.crl_number(&issuer).unwrap(), Some(7));
        assert_eq!(store.next_crl_number(&issuer).unwrap(), 8);
    }

    #[test]
    fn an_import_cut_short_is_done_again_from_the_start() {
        let home = tempfile::tempdir().unwrap();
        let sled_dir = home.path().join("ledger");
        let redb_path = home.path().join("ledger.redb");
        let rec = crate::store::contract::sample("svc");
        let token = TokenRecord {
            hash: "h".into(),
            name: "svc".into(),
            sans: vec![],
            created: rec.not_before,
            expires: rec.not_after,
            used: None,
        };
        write_sled(
            &sled_dir,
            std::slice::from_ref(&rec),
            &token,
            (&rec.issuer_serial, 1),
        );
        // A staging file from an import killed before its rename.
        std::fs::write(home.path().join("ledger.redb.importing"), b"partial").unwrap();
        import_sled_ledger(&sled_dir, &redb_path).unwrap();
        let store = RedbStore::open(&redb_path).unwrap();
        assert_eq!(store.all().unwrap(), vec![rec]);
    }
}
