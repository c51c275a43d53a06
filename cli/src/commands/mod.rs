//! One module per subcommand; [`run`] dispatches.
//!
//! Each command takes the resolved global settings ([`Globals`]) and its own
//! arguments, and returns an [`ExitStatus`] or an error (exit 2).

mod bundle;
mod crl;
mod enroll;
mod export;
mod init;
mod inspect;
mod issue;
mod list;
mod probe;
mod renew;
mod revoke;
mod rotate;
mod serve;
mod status;
mod token;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use minica_ca::store::{PostgresStore, RemoteStore};
use minica_ca::{Ca, CaHome, InitOptions, Opened};

use crate::args::{Cli, Command};
use crate::exit::ExitStatus;

/// Which ledger the commands use (`--store`, `$MINICA_STORE`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoreChoice {
    /// The redb ledger in the CA home (default): opened directly, or
    /// through a running `minica serve`'s socket when it holds the home.
    Embedded,
    /// A PostgreSQL database shared by every process (the URL as given).
    Postgres(String),
}

/// Never shows a password from the URL.
impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Embedded => f.write_str("Embedded"),
            StoreChoice::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&minica_ca::store::redact_url(url))
                .finish(),
        }
    }
}

impl StoreChoice {
    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            // `sled` names the embedded engine of earlier versions: scripts
            // that pass it keep working (the ledger is imported on first use).
            None | Some("") | Some("embedded") | Some("redb") | Some("sled") => {
                Ok(StoreChoice::Embedded)
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreChoice::Postgres(url.to_string()))
            }
            Some(other) => {
                // Never echo something that might hold a password.
                let shown = if other.contains('@') || other.contains("password") {
                    minica_ca::store::redact_url(other)
                } else {
                    format!("{other:?}")
                };
                bail!(
                    "--store {shown}: unsupported ledger store; accepted: `embedded` (the \
                     default: the ledger in the CA home; `redb` and `sled` mean the same) or a PostgreSQL URL \
                     `postgres://USER@HOST:PORT/DATABASE` (also via MINICA_STORE)"
                )
            }
        }
    }
}

/// Settings every command shares, validated once.
#[derive(Debug)]
pub(crate) struct Globals {
    /// The CA home (`--home`, `$MINICA_HOME`, XDG default).
    pub(crate) home: CaHome,
    /// The ledger (`--store`).
    pub(crate) store: StoreChoice,
}

impl Globals {
    fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        let store = StoreChoice::parse(cli.store.as_deref())?;
        // An empty MINICA_HOME counts as unset, like the other variables.
        let explicit = cli.home.as_deref().filter(|p| !p.as_os_str().is_empty());
        let home = CaHome::resolve(explicit).context("--home")?;
        Ok(Globals { home, store })
    }

    fn postgres(url: &str) -> anyhow::Result<Box<PostgresStore>> {
        Ok(Box::new(PostgresStore::connect(url)?))
    }

    /// A PostgreSQL store for a new CA: the database must hold no ledger
    /// yet (two CAs in one database would mix their records).
    fn postgres_for_init(url: &str) -> anyhow::Result<Box<PostgresStore>> {
        let store = Self::postgres(url)?;
        if !store.is_empty()? {
            bail!(
                "--store {}: the database already holds a CA ledger; give each CA its own \
                 database (to use that CA, copy its home and leave `init` out)",
                store.url()
            );
        }
        Ok(store)
    }

    /// The ledger of a `minica serve` running on this home, when its socket
    /// accepts a connection (a stale socket file is ignored).
    fn running_server(&self) -> Option<RemoteStore> {
        let sock = self.home.serve_socket_path();
        if !sock.exists() {
            return None;
        }
        RemoteStore::connect(&sock).ok()
    }

    fn no_ca(&self) -> anyhow::Result<()> {
        if self.home.has_ca() {
            Ok(())
        } else {
            Err(minica_ca::Error::NoCa {
                home: self.home.dir().to_path_buf(),
            }
            .into())
        }
    }

    /// Opens the CA for commands that use the ledger (issue, revoke, crl,
    /// list, token, renew, status, ...): PostgreSQL in shared mode; else
    /// through a running `minica serve`; else the embedded ledger, locked.
    pub(crate) fn open_ca(&self) -> anyhow::Result<Ca> {
        match &self.store {
            StoreChoice::Postgres(url) => {
                self.no_ca()?;
                Ok(Ca::open_shared(&self.home, Self::postgres(url)?)?)
            }
            StoreChoice::Embedded => match self.running_server() {
                Some(remote) => Ok(Ca::open_shared(&self.home, Box::new(remote))?),
                None => Ok(Ca::open(&self.home)?),
            },
        }
    }

    /// Like [`Globals::open_ca`], creating the CA with `options` when the
    /// home has none (`minica issue`).
    pub(crate) fn open_or_init_ca(&self, options: &InitOptions) -> anyhow::Result<(Ca, Opened)> {
        match &self.store {
            StoreChoice::Postgres(url) if !self.home.has_ca() => {
                match Ca::init_with_store(&self.home, options, Self::postgres_for_init(url)?) {
                    Ok(ca) => Ok((ca, Opened::Created)),
                    // Another process created it first.
                    Err(minica_ca::Error::CaExists { .. }) => {
                        Ok((self.open_ca()?, Opened::Existing))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            StoreChoice::Postgres(_) => Ok((self.open_ca()?, Opened::Existing)),
            StoreChoice::Embedded => match self.running_server() {
                Some(remote) => Ok((
                    Ca::open_shared(&self.home, Box::new(remote))?,
                    Opened::Existing,
                )),
                None => Ok(Ca::open_or_init(&self.home, options)?),
            },
        }
    }

    /// Creates the CA (`minica init`), its ledger in the chosen store.
    pub(crate) fn init_ca(&self, options: &InitOptions) -> anyhow::Result<Ca> {
        // Refuse before waiting for a lock a running server holds.
        if self.home.has_ca() {
            return Err(minica_ca::Error::CaExists {
                home: self.home.dir().to_path_buf(),
            }
            .into());
        }
        match &self.store {
            StoreChoice::Postgres(url) => {
                options.validate()?;
                Ok(Ca::init_with_store(
                    &self.home,
                    options,
                    Self::postgres_for_init(url)?,
                )?)
            }
            StoreChoice::Embedded => Ok(Ca::init(&self.home, options)?),
        }
    }

    /// Opens the CA for a rotation, which rewrites CA files in the home:
    /// refused while a `minica serve` holds the home (stop it, rotate,
    /// start it again); on PostgreSQL the rotation takes the home's lock
    /// for its duration.
    pub(crate) fn open_ca_for_rotation(&self) -> anyhow::Result<Ca> {
        if self.store == StoreChoice::Embedded && self.running_server().is_some() {
            bail!(
                "a `minica serve` is running on the CA home {} (socket {}): a rotation rewrites the \
                 CA files the server uses; stop the server, rotate, then start it again",
                self.home.dir().display(),
                self.home.serve_socket_path().display()
            );
        }
        let ca = self.open_ca()?;
        if !ca.is_exclusive() {
            eprintln!(
                "minica: note: every `minica serve` using this CA keeps signing with the old \
                 generation until it is restarted"
            );
        }
        Ok(ca)
    }

    /// The trust bundle to use: `explicit` (`--bundle FILE`), else the CA
    /// home's, which must exist.
    pub(crate) fn bundle_path(&self, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        let path = self.home.bundle_path();
        if !path.exists() {
            bail!(
                "no trust bundle: {} does not exist (no CA in {}); pass --bundle FILE",
                path.display(),
                self.home.dir().display()
            );
        }
        Ok(path)
    }
}

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let globals = Globals::resolve(&cli)?;
    match &cli.command {
        Command::Init(args) => init::run(&globals, args),
        Command::Issue(args) => issue::run(&globals, args),
        Command::Inspect(args) => inspect::run(args),
        Command::List(args) => list::run(&globals, args),
        Command::Bundle(args) => bundle::run(&globals, args),
        Command::Revoke(args) => revoke::run(&globals, args),
        Command::Crl(args) => crl::run(&globals, args),
        Command::Verify(args) => verify::run(&globals, args),
        Command::Probe(args) => probe::run(&globals, args),
        Command::Export(args) => export::run(&globals, args),
        Command::Renew(args) => renew::run(&globals, args),
        Command::Rotate(args) => rotate::run(&globals, args),
        Command::Status(args) => status::run(&globals, args),
        Command::Token(args) => token::run(&globals, args),
        Command::Serve(args) => serve::run(&globals, args),
        Command::Enroll(args) => enroll::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::args::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for argv in [
            &["minica", "--home", "/h", "issue", "x"][..],
            &["minica", "issue", "x", "--home", "/h"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(cli.home.as_deref(), Some(std::path::Path::new("/h")));
            assert!(matches!(cli.command, Command::Issue(_)));
        }
    }

    #[test]
    fn unsupported_stores_are_refused_clearly() {
        use super::{Globals, StoreChoice};
        for bad in ["garbage", "mysql://u:s3cret@h/db", "sled:x"] {
            let cli =
                Cli::try_parse_from(["minica", "--home", "/h", "--store", bad, "list"]).unwrap();
            let err = Globals::resolve(&cli).unwrap_err().to_string();
            assert!(
                err.contains("--store") && err.contains("postgres://") && err.contains("embedded"),
                "{err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
        for (arg, want) in [
            ("sled", StoreChoice::Embedded),
            ("redb", StoreChoice::Embedded),
            ("embedded", StoreChoice::Embedded),
            ("", StoreChoice::Embedded),
            (
                "postgres://u@h/db",
                StoreChoice::Postgres("postgres://u@h/db".into()),
            ),
            (
                "postgresql://u@h/db",
                StoreChoice::Postgres("postgresql://u@h/db".into()),
            ),
        ] {
            let cli =
                Cli::try_parse_from(["minica", "--home", "/h", "--store", arg, "list"]).unwrap();
            assert_eq!(Globals::resolve(&cli).unwrap().store, want, "{arg}");
        }
    }

    #[test]
    fn debug_never_shows_the_store_password() {
        let choice = super::StoreChoice::Postgres("postgres://u:s3cret@h/db".into());
        let shown = format!("{choice:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("u:***@h"),
            "{shown}"
        );
    }

    #[test]
    fn token_arguments() {
        let cli = Cli::try_parse_from([
            "minica",
            "token",
            "svc-a",
            "--dns",
            "a.example",
            "--ip",
            "10.0.0.1",
            "--ttl",
            "1h",
        ])
        .unwrap();
        let Command::Token(t) = cli.command else {
            panic!("token expected")
        };
        assert_eq!(t.ttl, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(t.dns.len() + t.ip.len(), 2);
        for bad in [
            &["minica", "token"][..],
            &["minica", "token", "../x"],
            &["minica", "token", "x", "--ttl", "soon"],
            &["minica", "token", "x", "--ip", "nope"],
        ] {
            assert_eq!(
                Cli::try_parse_from(bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn usage_errors_name_the_argument() {
        let err = Cli::try_parse_from(["minica", "issue", "../x"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("NAME"), "{err}");
        let err = Cli::try_parse_from(["minica", "issue", "x", "--valid", "1q"]).unwrap_err();
        assert!(err.to_string().contains("--valid"), "{err}");
    }

    #[test]
    fn revoke_crl_and_verify_arguments() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv);
        assert!(parse(&["minica", "revoke", "svc-a"]).is_ok());
        assert!(parse(&[
            "minica",
            "revoke",
            "--serial",
            "5e:0c",
            "--reason",
            "keyCompromise"
        ])
        .is_ok());
        for bad in [
            &["minica", "revoke"][..],
            &["minica", "revoke", "svc-a", "--serial", "5e"],
            &["minica", "revoke", "svc-a", "--reason", "certificateHold"],
            &["minica", "crl", "--der"],
            &["minica", "crl", "--next-update", "soon"],
            &["minica", "verify", "c.pem", "--host", "a", "--email", "a@b"],
            &["minica", "verify", "c.pem", "--purpose", "mail"],
            &["minica", "verify", "c.pem", "--at", "2026-13-01T00:00:00Z"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let cli = parse(&[
            "minica",
            "verify",
            "c.pem",
            "--crl",
            "a.pem",
            "--crl",
            "b.pem",
            "--at",
            "2026-03-01T00:00:00.999Z",
            "--max-depth",
            "0",
        ])
        .unwrap();
        let Command::Verify(v) = cli.command else {
            panic!("verify expected")
        };
        assert_eq!(v.crl.len(), 2);
        assert_eq!(v.max_depth, Some(0));
        assert_eq!(v.at.unwrap().nanosecond(), 999_000_000);
    }
}
