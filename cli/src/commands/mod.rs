//! One module per subcommand; [`run`] dispatches.
//!
//! Each command takes the resolved global settings ([`Globals`]) and its own
//! arguments, and returns an [`ExitStatus`] or an error (exit 2).

mod bundle;
mod crl;
mod export;
mod init;
mod inspect;
mod issue;
mod list;
mod probe;
mod renew;
mod revoke;
mod rotate;
mod status;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use minica_ca::CaHome;

use crate::args::{Cli, Command};
use crate::exit::ExitStatus;

/// Settings every command shares, validated once.
#[derive(Debug)]
pub(crate) struct Globals {
    /// The CA home (`--home`, `$MINICA_HOME`, XDG default).
    pub(crate) home: CaHome,
}

impl Globals {
    fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        match cli.store.as_deref().map(str::trim) {
            None | Some("") | Some("sled") => {}
            Some(url) => bail!(
                "--store {url:?}: not supported yet; only the built-in sled ledger in the CA home \
                 is available (leave --store and MINICA_STORE unset)"
            ),
        }
        // An empty MINICA_HOME counts as unset, like the other variables.
        let explicit = cli.home.as_deref().filter(|p| !p.as_os_str().is_empty());
        let home = CaHome::resolve(explicit).context("--home")?;
        Ok(Globals { home })
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
        let cli = Cli::try_parse_from(["minica", "--store", "postgres://x", "list"]).unwrap();
        let err = super::Globals::resolve(&cli).unwrap_err().to_string();
        assert!(err.contains("not supported yet"), "{err}");
        let cli =
            Cli::try_parse_from(["minica", "--home", "/h", "--store", "sled", "list"]).unwrap();
        assert!(super::Globals::resolve(&cli).is_ok());
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
