//! The ledger: where every issued certificate is recorded.
//!
//! CA logic talks to a [`Store`] and never to an engine. Engines:
//! - [`RedbStore`] (default): embedded in the CA home (`ledger.redb`); one
//!   process at a time, which the CA home's lock ensures. A sled ledger
//!   written by an earlier version is imported into it once
//!   ([`import_sled_ledger`]).
//! - [`PostgresStore`] (`--store postgres://...`): a database shared by
//!   any number of processes; it serialises their writes.
//! - [`RemoteStore`]: the ledger of a running `minica serve`, reached over
//!   the Unix socket in the CA home (the server answers with
//!   [`serve_connection`]).

mod postgres;
mod redb;
mod remote;
mod sled;

pub use self::postgres::{redact_url, PostgresStore, MAX_CONNECTIONS, SCHEMA_VERSION};
pub use self::redb::RedbStore;
pub use self::remote::{bind_private, serve_connection, RemoteStore};
pub use self::sled::{import_sled_ledger, needs_sled_import, IMPORTED_SLED_DIR};

use crate::error::StoreError;
use crate::record::{CertRecord, Revocation, Status};
use crate::serial::Serial;
use crate::token::{TokenRecord, TokenUse};

/// Which engine keeps a CA's ledger. Recorded in the home's `ca.json` at
/// `init`, so that a home is never used with another ledger by mistake (a
/// forgotten `--store` would otherwise start an empty ledger beside the
/// real one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Engine {
    /// The redb ledger in the home (also when reached through a running
    /// `minica serve`).
    #[default]
    Embedded,
    /// A PostgreSQL database.
    Postgres,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Embedded => "the embedded ledger in the CA home",
            Engine::Postgres => "a PostgreSQL database",
        })
    }
}

/// A durable ledger of certificates and per-issuer CRL numbers.
///
/// Every method that changes something is durable when it returns `Ok`
/// (flushed to disk, or committed by the database). The trait is object
/// safe: the CA holds a `Box<dyn Store>`.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Atomically and durably inserts `new` records (refusing any serial
    /// already present, with [`StoreError::SerialExists`], and then changing
    /// nothing) and replaces `updated` ones (which must exist, else
    /// [`StoreError::NotFound`]). One call is one durable commit, so a batch
    /// of issuances costs one flush.
    fn commit(&self, new: &[CertRecord], updated: &[CertRecord]) -> Result<(), StoreError>;

    /// Records one new leaf, and replaces `replaced` (the leaf it renews,
    /// now superseded or revoked) in the same atomic, durable commit, unless
    /// another leaf with its name (ASCII case-insensitively) is active at
    /// `now` ([`holds_name`]): then it refuses with
    /// [`StoreError::NameActive`] and changes nothing. The check is inside
    /// the commit, so of concurrent requests for one NAME, in any number of
    /// processes sharing the store, one wins.
    fn commit_leaf(
        &self,
        new: &CertRecord,
        replaced: Option<&CertRecord>,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The record with this serial.
    fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, StoreError>;

    /// Every record whose name equals `name` (ASCII case-insensitively),
    /// whatever its status.
    fn by_name(&self, name: &str) -> Result<Vec<CertRecord>, StoreError>;

    /// Every record, in serial order.
    fn all(&self) -> Result<Vec<CertRecord>, StoreError>;

    /// Increments and durably stores the CRL number of `issuer`, returning
    /// the new value (1 for the first CRL). Numbers never go down.
    fn next_crl_number(&self, issuer: &Serial) -> Result<u64, StoreError>;

    /// The last CRL number handed out for `issuer`, if any.
    fn crl_number(&self, issuer: &Serial) -> Result<Option<u64>, StoreError>;

    /// Every revoked certificate that `issuer` signed (status revoked, with
    /// a revocation), as (serial, revocation), in any order: what goes on
    /// `issuer`'s CRL. The default scans [`Store::all`]; an engine should
    /// keep an index so that publishing a CRL does not read every record.
    fn revoked_by(&self, issuer: &Serial) -> Result<Vec<(Serial, Revocation)>, StoreError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| &r.issuer_serial == issuer && r.status == Status::Revoked)
            .filter_map(|r| r.revocation.map(|rev| (r.serial, rev)))
            .collect())
    }

    /// Durably stores a new one-time token (refusing a hash already present
    /// with [`StoreError::TokenExists`]).
    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    /// The token with this hash, as stored, without changing it: lets the CA
    /// refuse a request (wrong names, say) before the token is spent.
    fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// In one atomic, durable step: if the token with this hash exists, is
    /// unused and has not expired at `now`, marks it used at `now` and
    /// returns [`TokenUse::Consumed`]; otherwise changes nothing and says
    /// why. Of several concurrent calls for one token (in any number of
    /// processes sharing the store) exactly one gets `Consumed`.
    fn consume_token(&self, hash: &str, now: time::OffsetDateTime) -> Result<TokenUse, StoreError>;

    /// Enrolment in one atomic, durable step: consumes the token exactly as
    /// [`Store::consume_token`] does and, with it, inserts the (unrevoked)
    /// record `new` of the certificate issued for it. When the token cannot
    /// be consumed, `new`'s serial exists ([`StoreError::SerialExists`]),
    /// or another leaf holds its name at `now` ([`StoreError::NameActive`],
    /// as [`Store::commit_leaf`] checks it), nothing changes: a token is
    /// never spent without its certificate being recorded, and one commit
    /// costs one flush.
    fn consume_token_and_insert(
        &self,
        hash: &str,
        now: time::OffsetDateTime,
        new: &CertRecord,
    ) -> Result<TokenUse, StoreError>;

    /// Durably inserts new records (see [`Store::commit`]).
    fn insert(&self, new: &[CertRecord]) -> Result<(), StoreError> {
        self.commit(new, &[])
    }

    /// Durably replaces one existing record (revocation, supersession).
    fn update(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.commit(&[], std::slice::from_ref(record))
    }

    /// True when a record with this serial exists.
    fn contains(&self, serial: &Serial) -> Result<bool, StoreError> {
        Ok(self.get(serial)?.is_some())
    }

    /// The engine behind this store (see [`Engine`]). The default is the
    /// embedded one; [`PostgresStore`] says [`Engine::Postgres`].
    fn engine(&self) -> Engine {
        Engine::Embedded
    }
}

/// True when `existing` keeps a new leaf with its name from being recorded
/// at `now`: it is a leaf, not revoked or superseded, and not expired (one
/// active leaf per NAME; see [`Store::commit_leaf`]).
pub fn holds_name(existing: &CertRecord, now: time::OffsetDateTime) -> bool {
    existing.kind == crate::record::CertKind::Leaf
        && existing.status_at(now) == crate::record::DisplayStatus::Active
}

/// The behaviour every [`Store`] engine must show, as reusable test code:
/// a new engine calls [`contract::check`] on an empty store, reopens it, and
/// calls [`contract::check_after_reopen`]. Test code (it panics on any
/// deviation); the `contract-tests` feature exposes it to the end-to-end
/// tests, which run it against a real PostgreSQL.
#[cfg(any(test, feature = "contract-tests"))]
#[doc(hidden)]
// reason: test code; a failed unwrap is a failed contract with its message.
#[allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
pub mod contract {
    use super::Store;
    use crate::error::StoreError;
    use crate::record::{CertKind, CertRecord, Status};
    use crate::serial::Serial;
    use crate::token::TokenUse;

    pub fn sample(name: &str) -> CertRecord {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        CertRecord {
            serial: Serial::random(),
            name: name.to_string(),
            kind: CertKind::Leaf,
            profile: None,
            key_type: crate::key::KeyType::EcdsaP256,
            sans: vec![],
            not_before: now,
            not_after: now,
            issuer_serial: Serial::random(),
            status: Status::Active,
            revocation: None,
            superseded_by: None,
            renewed_from: None,
            key_generated: true,
            cert_der: vec![1, 2, 3],
        }
    }

    fn revocation() -> crate::record::Revocation {
        crate::record::Revocation {
            at: time::OffsetDateTime::from_unix_timestamp(1_770_000_000).unwrap(),
            reason: crate::crl::RevocationReason::KeyCompromise,
        }
    }

    /// What [`check`] wrote, for [`check_after_reopen`].
    pub struct Written {
        a: Serial,
        a_issuer: Serial,
        b: Serial,
        issuer: Serial,
    }

    /// Runs the contract on an empty store.
    pub fn check(store: &dyn Store) -> Written {
        let a = sample("svc-a");
        let b = sample("SVC-A");
        let c = sample("svc-ab");
        store.insert(&[a.clone(), b.clone(), c.clone()]).unwrap();

        // A batch with one known serial changes nothing.
        let err = store.insert(&[sample("new"), a.clone()]).unwrap_err();
        assert!(matches!(err, StoreError::SerialExists(_)), "{err}");
        assert!(store.by_name("new").unwrap().is_empty());
        // The same serial twice in one batch is refused too.
        let twin = sample("twin");
        let err = store.insert(&[twin.clone(), twin]).unwrap_err();
        assert!(matches!(err, StoreError::SerialExists(_)), "{err}");

        // Names match case-insensitively and exactly (not by prefix).
        let mut found: Vec<_> = store
            .by_name("Svc-A")
            .unwrap()
            .into_iter()
            .map(|r| r.serial)
            .collect();
        found.sort();
        let mut want = vec![a.serial.clone(), b.serial.clone()];
        want.sort();
        assert_eq!(found, want);

        // Updates replace; unknown serials are refused; commit is atomic.
        let mut revoked = a.clone();
        revoked.status = Status::Revoked;
        revoked.revocation = Some(revocation());
        store.update(&revoked).unwrap();
        assert_eq!(
            store.revoked_by(&a.issuer_serial).unwrap(),
            vec![(a.serial.clone(), revocation())]
        );
        // Revoking then un-revoking (in one commit or two) leaves no entry.
        let mut b_revoked = b.clone();
        b_revoked.status = Status::Revoked;
        b_revoked.revocation = Some(revocation());
        store.update(&b_revoked).unwrap();
        assert_eq!(store.revoked_by(&b.issuer_serial).unwrap().len(), 1);
        store.commit(&[], &[b_revoked, b.clone()]).unwrap();
        assert!(store.revoked_by(&b.issuer_serial).unwrap().is_empty());
        let err = store.update(&sample("ghost")).unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        let mut superseded = c.clone();
        superseded.status = Status::Superseded;
        let renewal = sample("svc-ab");
        store
            .commit(std::slice::from_ref(&renewal), &[superseded])
            .unwrap();
        assert_eq!(
            store.get(&c.serial).unwrap().unwrap().status,
            Status::Superseded
        );
        assert!(store.contains(&renewal.serial).unwrap());
        assert!(!store.contains(&Serial::random()).unwrap());
        assert_eq!(store.all().unwrap().len(), 4);

        // CRL numbers: per issuer, from 1, never down.
        let (x, y) = (Serial::random(), Serial::random());
        assert_eq!(store.crl_number(&x).unwrap(), None);
        assert_eq!(store.next_crl_number(&x).unwrap(), 1);
        assert_eq!(store.next_crl_number(&x).unwrap(), 2);
        assert_eq!(store.next_crl_number(&y).unwrap(), 1);

        // Tokens: stored once, consumed once, refused when used or expired.
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let token = |hash: &str, ttl: i64| crate::token::TokenRecord {
            hash: hash.to_string(),
            name: "svc-t".to_string(),
            sans: vec![],
            created: now,
            expires: now + time::Duration::seconds(ttl),
            used: None,
        };
        store.put_token(&token("aa", 60)).unwrap();
        let err = store.put_token(&token("aa", 60)).unwrap_err();
        assert!(matches!(err, StoreError::TokenExists(_)), "{err}");
        assert_eq!(store.consume_token("zz", now).unwrap(), TokenUse::Unknown);
        assert_eq!(store.get_token("zz").unwrap(), None);
        assert_eq!(store.get_token("aa").unwrap(), Some(token("aa", 60)));
        let mut used = token("aa", 60);
        used.used = Some(now);
        assert_eq!(
            store.consume_token("aa", now).unwrap(),
            TokenUse::Consumed(used.clone())
        );
        assert_eq!(
            store.consume_token("aa", now).unwrap(),
            TokenUse::AlreadyUsed(used)
        );
        store.put_token(&token("bb", 1)).unwrap();
        let later = now + time::Duration::seconds(1);
        assert_eq!(
            store.consume_token("bb", later).unwrap(),
            TokenUse::Expired(token("bb", 1))
        );
        // Consuming with a record: both or neither.
        store.put_token(&token("dd", 60)).unwrap();
        let enrolled = sample("svc-t");
        let mut used = token("dd", 60);
        used.used = Some(now);
        assert_eq!(
            store
                .consume_token_and_insert("dd", now, &enrolled)
                .unwrap(),
            TokenUse::Consumed(used.clone())
        );
        assert!(store.contains(&enrolled.serial).unwrap());
        assert_eq!(store.by_name("svc-t").unwrap().len(), 1);
        let again = sample("svc-t");
        assert_eq!(
            store.consume_token_and_insert("dd", now, &again).unwrap(),
            TokenUse::AlreadyUsed(used)
        );
        assert!(!store.contains(&again.serial).unwrap());
        store.put_token(&token("ee", 60)).unwrap();
        let err = store
            .consume_token_and_insert("ee", now, &enrolled)
            .unwrap_err();
        assert!(matches!(err, StoreError::SerialExists(_)), "{err}");
        assert_eq!(store.get_token("ee").unwrap().unwrap().used, None);
        store.put_token(&token("cc", 60)).unwrap();

        // One active leaf per NAME, checked inside the commit.
        let mut leaf = sample("Unique");
        leaf.not_after = now + time::Duration::days(1);
        store.commit_leaf(&leaf, None, now).unwrap();
        let mut twin = sample("unique");
        twin.not_after = leaf.not_after;
        let err = store.commit_leaf(&twin, None, now).unwrap_err();
        assert!(
            matches!(&err, StoreError::NameActive { serial, .. } if *serial == leaf.serial.to_hex()),
            "{err}"
        );
        assert!(!store.contains(&twin.serial).unwrap());
        // ... and for an enrolment, which then keeps its token.
        store.put_token(&token("ff", 60)).unwrap();
        let err = store
            .consume_token_and_insert("ff", now, &twin)
            .unwrap_err();
        assert!(matches!(err, StoreError::NameActive { .. }), "{err}");
        assert_eq!(store.get_token("ff").unwrap().unwrap().used, None);
        // A renewal replaces the active leaf in the same commit.
        let mut old = leaf.clone();
        old.status = Status::Superseded;
        old.superseded_by = Some(twin.serial.clone());
        store.commit_leaf(&twin, Some(&old), now).unwrap();
        assert_eq!(
            store.get(&leaf.serial).unwrap().unwrap().status,
            Status::Superseded
        );
        // An expired leaf holds its name no longer.
        let mut gone = sample("lapsed");
        gone.not_after = now - time::Duration::seconds(1);
        store.insert(std::slice::from_ref(&gone)).unwrap();
        store.commit_leaf(&sample("LAPSED"), None, now).unwrap();
        Written {
            a_issuer: a.issuer_serial,
            a: a.serial,
            b: b.serial,
            issuer: x,
        }
    }

    /// Checks that what [`check`] wrote is still there.
    pub fn check_after_reopen(store: &dyn Store, w: &Written) {
        assert_eq!(store.get(&w.a).unwrap().unwrap().status, Status::Revoked);
        assert_eq!(
            store.revoked_by(&w.a_issuer).unwrap(),
            vec![(w.a.clone(), revocation())]
        );
        assert!(store.contains(&w.b).unwrap());
        assert_eq!(store.all().unwrap().len(), 9);
        assert_eq!(store.crl_number(&w.issuer).unwrap(), Some(2));
        assert_eq!(store.next_crl_number(&w.issuer).unwrap(), 3);
        // A token consumed before the reopen stays used; an unused one works.
        let now = time::OffsetDateTime::now_utc();
        assert!(store.get_token("aa").unwrap().unwrap().used.is_some());
        assert!(matches!(
            store.consume_token("aa", now).unwrap(),
            TokenUse::AlreadyUsed(_)
        ));
        assert!(matches!(
            store.consume_token("cc", now).unwrap(),
            TokenUse::Consumed(_)
        ));
    }
}
