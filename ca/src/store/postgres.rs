//! The PostgreSQL engine for the ledger (`--store postgres://...`).
//!
//! # Design
//! Several processes (`minica serve` instances and CLI commands, on one or
//! several machines) share one database; the database serialises their
//! writes, so no process holds the CA home's lock for its lifetime (see
//! [`crate::Ca::open_shared`]). CA keys and certificates stay in the CA
//! home: only the ledger moves.
//!
//! - Tables (`ca/migrations/`): `certificates` (the record as JSON, plus
//!   the queried columns: serial as the primary key, lowercase name, issuer
//!   serial, status; a partial index of revoked records per issuer for
//!   CRLs), `crl_numbers`, `tokens` (by hash), `minica_schema` (applied
//!   migration versions).
//! - [`Store::commit`] is one transaction: a new serial that is already
//!   present (the primary key decides, also against a concurrent writer)
//!   rolls everything back with [`StoreError::SerialExists`].
//! - [`Store::next_crl_number`] is one `INSERT .. ON CONFLICT DO UPDATE SET
//!   n = n + 1 RETURNING n`: the row lock makes concurrent callers get
//!   distinct, increasing numbers.
//! - [`Store::consume_token`] is one conditional `UPDATE .. WHERE used IS
//!   NULL AND expires > now RETURNING`: of concurrent callers exactly one
//!   changes the row.
//! - Migrations are applied on connect, in one transaction holding
//!   `pg_advisory_xact_lock`, so concurrent first starts apply them once;
//!   a database with a newer schema than this build knows is refused.
//! - A small pool: up to [`MAX_CONNECTIONS`] connections, opened on
//!   demand and reused, so a multi-threaded server is not serialised on
//!   one connection; each keeps its prepared statements, so a query is one
//!   round trip. A connection that failed (e.g. the database restarted) is
//!   dropped: the call that met the failure returns the error, the next one
//!   opens a new connection. Measured on loopback (release build, 2 cores,
//!   `fsync=on`): about 3,200 single-record commits/s from one thread and
//!   7,100/s from 8 threads.
//!
//! # Blocking
//! This uses the synchronous `postgres` client, which runs a small tokio
//! runtime of its own per connection. Call it only from blocking code
//! (the CLI, or `spawn_blocking` in `minica serve`): calling it on an async
//! runtime's thread panics.
//!
//! # Transport security
//! Connections are made without TLS (`NoTls`): use a Unix socket
//! (`postgres://user@%2Frun%2Fpostgresql/db`), loopback, or a local
//! TLS-terminating proxy. A URL with `sslmode=require` is refused with a
//! clear error rather than silently sent in clear. The ledger holds no
//! private key and no token, only certificates, hashes and CRL numbers, but
//! a writer could still add records: protect the database like the CA home.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::config::SslMode;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement};

use crate::error::StoreError;
use crate::record::{CertRecord, Revocation, Status};
use crate::serial::Serial;
use crate::store::{Engine, Store};
use crate::token::{TokenRecord, TokenUse};

/// Most connections one store opens: enough for a server's blocking
/// threads to work in parallel, few enough for several servers on one
/// database (PostgreSQL's default limit is 100).
pub const MAX_CONNECTIONS: usize = 8;

/// Bound on each connection attempt when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of the advisory lock that serialises migrations ("minica" in
/// ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x6d69_6e69_6361_0001;

/// The schema migrations, in order: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/0001_ledger.sql"))];

/// Consumes a usable token ($1 hash, $2 now in Unix seconds): one row
/// back exactly when this statement consumed it.
const CONSUME_TOKEN: &str = "UPDATE tokens SET used = $2
     WHERE hash = $1 AND used IS NULL AND expires > $2
     RETURNING record::text";

const INSERT_CERT: &str =
    "INSERT INTO certificates (serial, name_lower, issuer_serial, status, record)
     VALUES ($1, $2, $3, $4, $5::text::jsonb)
     ON CONFLICT (serial) DO NOTHING";
const UPDATE_CERT: &str = "UPDATE certificates
     SET name_lower = $2, issuer_serial = $3, status = $4, record = $5::text::jsonb
     WHERE serial = $1";

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 1;

/// The ledger in a PostgreSQL database.
pub struct PostgresStore {
    config: Config,
    /// The URL with any password replaced, for messages.
    url: String,
    pool: Mutex<Pool>,
    returned: Condvar,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    /// Connections open, idle or lent.
    open: usize,
}

/// A connection and the statements prepared on it (each query is then one
/// round trip instead of two).
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A pooled connection, returned on drop (unless it failed).
struct Lent<'a> {
    store: &'a PostgresStore,
    conn: Option<Conn>,
}

impl Lent<'_> {
    fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        // `Some` until the guard is dropped.
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Remote("pooled connection used after return".into()))
    }

    /// The connection.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        Ok(&mut self.conn()?.client)
    }

    /// `sql` prepared on this connection (once; then from the cache).
    fn prepare(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        let store = self.store;
        let conn = self.conn()?;
        if let Some(st) = conn.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = conn
            .client
            .prepare(sql)
            .map_err(store.err("cannot prepare a statement"))?;
        conn.statements.insert(sql, st.clone());
        Ok(st)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Ok(mut pool) = self.store.pool.lock() else {
            return;
        };
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => pool.idle.push(conn),
            _ => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.store.returned.notify_one();
    }
}

/// `url` with the password (in the user info or a `password=` parameter)
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[not a URL]".to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The passwords written in `url` (user info, `password=` parameters), to
/// scrub them from messages.
fn url_secrets(url: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some((userinfo, _)) = rest[..end].rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                out.push(pw);
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            out.extend(query.split('&').filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.eq_ignore_ascii_case("password").then_some(v)
            }));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn decode_record(serial: &[u8], json: &str) -> Result<CertRecord, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
        key: format!("certificates/{}", hex::encode(serial)),
        source,
    })
}

fn decode_token(hash: &str, json: &str) -> Result<TokenRecord, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
        key: format!("tokens/{hash}"),
        source,
    })
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Superseded => "superseded",
        Status::Revoked => "revoked",
    }
}

fn unix(secs: i64, key: &str) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
        key: key.to_string(),
        source: serde::de::Error::custom("timestamp out of range"),
    })
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or
    /// `postgresql://`), applies the schema migrations it lacks, and keeps
    /// the connection for later calls. Refuses a URL that asks for TLS and
    /// a database migrated by a newer minica. Messages never show the
    /// password.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redact_url(url);
        let refuse = |reason: String| StoreError::PostgresUrl {
            url: shown.clone(),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(refuse(
                "expected postgres://USER@HOST:PORT/DATABASE".to_string(),
            ));
        }
        let mut config = Config::from_str(url).map_err(|e| {
            // A parse error names the option, never its value; still, make
            // sure no password leaks through it.
            let mut msg = e.to_string();
            for secret in url_secrets(url) {
                msg = msg.replace(secret, "***");
            }
            refuse(format!("not a valid PostgreSQL URL: {msg}"))
        })?;
        match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => {}
            _ => {
                return Err(refuse(
                    "sslmode=require is not supported: minica connects without TLS; use a Unix \
                     socket, loopback, or a local TLS-terminating proxy (see docs/ca-operations.md)"
                        .to_string(),
                ))
            }
        }
        // Never try TLS (we have none): `prefer` would just fall back.
        config.ssl_mode(SslMode::Disable);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("minica");
        }
        let store = PostgresStore {
            config,
            url: shown,
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        };
        {
            let mut conn = store.lend()?;
            store.migrate(conn.client()?)?;
        }
        Ok(store)
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the database holds no certificate yet: `minica init`
    /// refuses a database that already holds another CA's ledger.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let mut conn = self.lend()?;
        let st = conn.prepare("SELECT NOT EXISTS (SELECT 1 FROM certificates)")?;
        Ok(conn
            .client()?
            .query_one(&st, &[])
            .map_err(self.err("cannot read certificates"))?
            .get(0))
    }

    fn err(&self, what: &'static str) -> impl FnOnce(postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres {
            url: self.url.clone(),
            what,
            source,
        }
    }

    /// Takes an idle connection, or opens one (up to
    /// [`MAX_CONNECTIONS`]), or waits for one to be returned.
    fn lend(&self) -> Result<Lent<'_>, StoreError> {
        let poisoned = || StoreError::Remote("PostgreSQL connection pool poisoned".into());
        let mut pool = self.pool.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = pool.idle.pop() {
                if conn.client.is_closed() {
                    pool.open = pool.open.saturating_sub(1);
                    continue;
                }
                return Ok(Lent {
                    store: self,
                    conn: Some(conn),
                });
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Lent {
                        store: self,
                        conn: Some(Conn {
                            client,
                            statements: HashMap::new(),
                        }),
                    }),
                    Err(e) => {
                        if let Ok(mut pool) = self.pool.lock() {
                            pool.open = pool.open.saturating_sub(1);
                        }
                        self.returned.notify_one();
                        Err(self.err("cannot connect")(e))
                    }
                };
            }
            pool = self.returned.wait(pool).map_err(|_| poisoned())?;
        }
    }

    /// Applies the migrations this database lacks, once, whoever else
    /// connects at the same time.
    fn migrate(&self, client: &mut Client) -> Result<(), StoreError> {
        let mut tx = client.transaction().map_err(self.err("cannot migrate"))?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS minica_schema (
                 version    bigint PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .map_err(self.err("cannot migrate"))?;
        let current: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM minica_schema", &[])
            .map_err(self.err("cannot read the schema version"))?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                url: self.url.clone(),
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql)
                .map_err(self.err("cannot apply a schema migration"))?;
            tx.execute(
                "INSERT INTO minica_schema (version) VALUES ($1)",
                &[version],
            )
            .map_err(self.err("cannot record a schema migration"))?;
        }
        tx.commit().map_err(self.err("cannot migrate"))
    }

    fn records(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<CertRecord>, StoreError> {
        let mut conn = self.lend()?;
        let st = conn.prepare(sql)?;
        let rows = conn
            .client()?
            .query(&st, params)
            .map_err(self.err("cannot read certificates"))?;
        rows.iter()
            .map(|row| {
                let serial: Vec<u8> = row.get(0);
                let json: String = row.get(1);
                decode_record(&serial, &json)
            })
            .collect()
    }

    /// Runs [`INSERT_CERT`] or [`UPDATE_CERT`] for `rec`; the rows changed.
    fn write(
        &self,
        tx: &mut postgres::Transaction<'_>,
        statement: &Statement,
        rec: &CertRecord,
        what: &'static str,
    ) -> Result<u64, StoreError> {
        let json = serde_json::to_string(rec).map_err(StoreError::Encode)?;
        tx.execute(
            statement,
            &[
                &rec.serial.as_bytes() as &(dyn ToSql + Sync),
                &rec.name.to_ascii_lowercase(),
                &rec.issuer_serial.as_bytes(),
                &status_text(rec.status),
                &json,
            ],
        )
        .map_err(self.err(what))
    }

    /// [`Store::commit`], and with `exclusive_at` [`Store::commit_leaf`]
    /// (every new record's name checked free inside the transaction).
    fn commit_checked(
        &self,
        new: &[CertRecord],
        updated: &[CertRecord],
        exclusive_at: Option<time::OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lend()?;
        let insert = conn.prepare(INSERT_CERT)?;
        let update = conn.prepare(UPDATE_CERT)?;
        let mut tx = conn
            .client()?
            .transaction()
            .map_err(self.err("cannot begin a transaction"))?;
        // Dropping `tx` before `commit` rolls everything back.
        if let Some(now) = exclusive_at {
            for rec in new {
                self.check_name_free(&mut tx, rec, updated, now)?;
            }
        }
        for rec in new {
            if self.write(&mut tx, &insert, rec, "cannot insert a certificate")? != 1 {
                return Err(StoreError::SerialExists(rec.serial.to_hex()));
            }
        }
        for rec in updated {
            if self.write(&mut tx, &update, rec, "cannot update a certificate")? == 0 {
                return Err(StoreError::NotFound(rec.serial.to_hex()));
            }
        }
        tx.commit().map_err(self.err("cannot commit"))
    }

    /// Inside `tx`: waits for every other transaction recording a leaf with
    /// `new`'s name (a transaction-scoped advisory lock on the name), then
    /// refuses with [`StoreError::NameActive`] if another leaf, other than
    /// those `replaced` in the same commit, holds it at `now`. Under the lock, the query sees every
    /// commit of an earlier holder (READ COMMITTED takes a new snapshot
    /// per statement).
    fn check_name_free(
        &self,
        tx: &mut postgres::Transaction<'_>,
        new: &CertRecord,
        replaced: &[CertRecord],
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let name = new.name.to_ascii_lowercase();
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('minica-name:' || $1, 0))",
            &[&name],
        )
        .map_err(self.err("cannot lock a name"))?;
        let rows = tx
            .query(
                "SELECT serial, record::text FROM certificates
                 WHERE name_lower = $1 AND status = 'active'",
                &[&name],
            )
            .map_err(self.err("cannot read certificates"))?;
        for row in rows {
            let serial: Vec<u8> = row.get(0);
            if replaced
                .iter()
                .any(|r| r.serial.as_bytes() == serial.as_slice())
            {
                continue;
            }
            let json: String = row.get(1);
            if super::holds_name(&decode_record(&serial, &json)?, now) {
                return Err(StoreError::NameActive {
                    name: new.name.clone(),
                    serial: hex::encode(&serial),
                });
            }
        }
        Ok(())
    }

    /// Why a token was not consumed. A row that is there is used or
    /// expired (once used it stays used; once expired it stays expired).
    fn token_refusal(
        &self,
        conn: &mut Lent<'_>,
        hash: &str,
        now: time::OffsetDateTime,
    ) -> Result<TokenUse, StoreError> {
        match self.token(conn, hash)? {
            None => Ok(TokenUse::Unknown),
            Some(record) => Ok(record
                .refusal_at(now)
                .unwrap_or(TokenUse::AlreadyUsed(record))),
        }
    }

    fn token(&self, conn: &mut Lent<'_>, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let st = conn.prepare("SELECT record::text, used FROM tokens WHERE hash = $1")?;
        let row = conn
            .client()?
            .query_opt(&st, &[&hash])
            .map_err(self.err("cannot read a token"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let json: String = row.get(0);
        let used: Option<i64> = row.get(1);
        let mut record = decode_token(hash, &json)?;
        record.used = used
            .map(|s| unix(s, &format!("tokens/{hash}")))
            .transpose()?;
        Ok(Some(record))
    }
}

impl Store for PostgresStore {
    fn commit(&self, new: &[CertRecord], updated: &[CertRecord]) -> Result<(), StoreError> {
        self.commit_checked(new, updated, None)
    }

    fn commit_leaf(
        &self,
        new: &CertRecord,
        replaced: Option<&CertRecord>,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let replaced: Vec<CertRecord> = replaced.into_iter().cloned().collect();
        self.commit_checked(std::slice::from_ref(new), &replaced, Some(now))
    }

    fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        Ok(self
            .records(
                "SELECT serial, record::text FROM certificates WHERE serial = $1",
                &[&serial.as_bytes()],
            )?
            .pop())
    }

    fn by_name(&self, name: &str) -> Result<Vec<CertRecord>, StoreError> {
        self.records(
            "SELECT serial, record::text FROM certificates WHERE name_lower = $1 ORDER BY serial",
            &[&name.to_ascii_lowercase()],
        )
    }

    fn all(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.records(
            "SELECT serial, record::text FROM certificates ORDER BY serial",
            &[],
        )
    }

    fn next_crl_number(&self, issuer: &Serial) -> Result<u64, StoreError> {
        let mut conn = self.lend()?;
        let st = conn.prepare(
            "INSERT INTO crl_numbers (issuer_serial, n) VALUES ($1, 1)
             ON CONFLICT (issuer_serial) DO UPDATE SET n = crl_numbers.n + 1
             RETURNING n",
        )?;
        let n: i64 = conn
            .client()?
            .query_one(&st, &[&issuer.as_bytes()])
            .map_err(self.err("cannot take a CRL number"))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn crl_number(&self, issuer: &Serial) -> Result<Option<u64>, StoreError> {
        let mut conn = self.lend()?;
        let st = conn.prepare("SELECT n FROM crl_numbers WHERE issuer_serial = $1")?;
        let row = conn
            .client()?
            .query_opt(&st, &[&issuer.as_bytes()])
            .map_err(self.err("cannot read a CRL number"))?;
        Ok(row.map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn revoked_by(&self, issuer: &Serial) -> Result<Vec<(Serial, Revocation)>, StoreError> {
        // Only the revocation of each record (served by the partial index),
        // not the whole record: a CRL of many entries stays cheap.
        let mut conn = self.lend()?;
        let st = conn.prepare(
            "SELECT serial, (record->'revocation')::text FROM certificates
             WHERE issuer_serial = $1 AND status = 'revoked'
               AND record->'revocation' IS NOT NULL
               AND record->'revocation' <> 'null'::jsonb",
        )?;
        let rows = conn
            .client()?
            .query(&st, &[&issuer.as_bytes()])
            .map_err(self.err("cannot read revoked certificates"))?;
        rows.iter()
            .map(|row| {
                let serial: Vec<u8> = row.get(0);
                let json: String = row.get(1);
                let revocation: Revocation =
                    serde_json::from_str(&json).map_err(|source| StoreError::Corrupt {
                        key: format!("certificates/{}", hex::encode(&serial)),
                        source,
                    })?;
                Ok((Serial::from_bytes(&serial), revocation))
            })
            .collect()
    }

    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(token).map_err(StoreError::Encode)?;
        let mut conn = self.lend()?;
        let st = conn.prepare(
            "INSERT INTO tokens (hash, expires, used, record)
             VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (hash) DO NOTHING",
        )?;
        let n = conn
            .client()?
            .execute(
                &st,
                &[
                    &token.hash as &(dyn ToSql + Sync),
                    &token.expires.unix_timestamp(),
                    &token.used.map(|t| t.unix_timestamp()),
                    &json,
                ],
            )
            .map_err(self.err("cannot store a token"))?;
        if n != 1 {
            return Err(StoreError::TokenExists(token.hash.clone()));
        }
        Ok(())
    }

    fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.lend()?;
        self.token(&mut conn, hash)
    }

    fn consume_token_and_insert(
        &self,
        hash: &str,
        now: time::OffsetDateTime,
        new: &CertRecord,
    ) -> Result<TokenUse, StoreError> {
        let mut conn = self.lend()?;
        let consume = conn.prepare(CONSUME_TOKEN)?;
        let insert = conn.prepare(INSERT_CERT)?;
        let secs = now.unix_timestamp();
        let mut tx = conn
            .client()?
            .transaction()
            .map_err(self.err("cannot begin a transaction"))?;
        // Dropping `tx` before `commit` rolls everything back.
        let row = tx
            .query_opt(&consume, &[&hash as &(dyn ToSql + Sync), &secs])
            .map_err(self.err("cannot consume a token"))?;
        let Some(row) = row else {
            drop(tx);
            return self.token_refusal(&mut conn, hash, now);
        };
        self.check_name_free(&mut tx, new, &[], now)?;
        if self.write(&mut tx, &insert, new, "cannot insert a certificate")? != 1 {
            return Err(StoreError::SerialExists(new.serial.to_hex()));
        }
        tx.commit().map_err(self.err("cannot commit"))?;
        let json: String = row.get(0);
        let mut record = decode_token(hash, &json)?;
        record.used = Some(now);
        Ok(TokenUse::Consumed(record))
    }

    fn consume_token(&self, hash: &str, now: time::OffsetDateTime) -> Result<TokenUse, StoreError> {
        let mut conn = self.lend()?;
        // Expiry is whole seconds: `now >= expires` exactly when
        // `floor(now) >= expires`.
        let secs = now.unix_timestamp();
        let st = conn.prepare(CONSUME_TOKEN)?;
        let row = conn
            .client()?
            .query_opt(&st, &[&hash as &(dyn ToSql + Sync), &secs])
            .map_err(self.err("cannot consume a token"))?;
        if let Some(row) = row {
            let json: String = row.get(0);
            let mut record = decode_token(hash, &json)?;
            record.used = Some(now);
            return Ok(TokenUse::Consumed(record));
        }
        self.token_refusal(&mut conn, hash, now)
    }

    fn engine(&self) -> Engine {
        Engine::Postgres
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact_url("postgres://minica:s3cret@db:5432/ca?sslmode=disable"),
            "postgres://minica:***@db:5432/ca?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://u@h/d?password=s3cret&x=1"),
            "postgresql://u@h/d?password=***&x=1"
        );
        assert_eq!(redact_url("postgres://h"), "postgres://h");
        for url in [
            "postgres://u:s3cret@127.0.0.1:1/db?sslmode=require",
            "postgres://u:s3cret@127.0.0.1:1/db?bogus=1",
            "mysql://u:s3cret@h/db",
        ] {
            let err = PostgresStore::connect(url).unwrap_err();
            let msg = format!("{err} {:?}", std::error::Error::source(&err));
            assert!(!msg.contains("s3cret"), "{msg}");
            assert!(msg.contains("--store"), "{msg}");
        }
        assert_eq!(
            url_secrets("postgres://u:pw1@h/d?password=pw2&x=1"),
            ["pw1", "pw2"]
        );
        let err = PostgresStore::connect("postgres://u:s3cret@127.0.0.1:1/db").unwrap_err();
        let msg = err.to_string();
        assert!(
            !msg.contains("s3cret") && msg.contains("cannot connect"),
            "{msg}"
        );
    }
}
