//! A real PostgreSQL server for the tests: a temp cluster made by `initdb`,
//! started by `pg_ctl` on a free 127.0.0.1 port (trust authentication, the
//! Unix socket in the temp dir, `fsync=on`), stopped with `pg_ctl stop -m
//! immediate` and removed on drop, also when a test fails. As root (initdb
//! refuses to run as root) the cluster belongs to the `postgres` user and
//! the tools run through `runuser`.
//!
//! One server per test: `initdb` + start take about 0.7 s here, so sharing
//! a server (and stopping it at process exit) is not worth its complexity.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::sidecar::harness::{free_addr, run_bounded};
use crate::support::Ran;

/// Longest wait for `initdb`, for the server to accept connections, and
/// for any `psql` command.
const LIMIT: Duration = Duration::from_secs(30);

/// A running PostgreSQL cluster. Field order: the server is stopped (in
/// `drop`) before the directory is removed.
pub(crate) struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    /// Whether the tools run as the `postgres` user.
    as_postgres: bool,
    /// The TCP port on 127.0.0.1.
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or Debian's
/// `/usr/lib/postgresql/<version>/bin`. Fails with an install hint.
fn pg_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|d| d.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): \
             run scripts/test.sh, which installs the `postgresql` package"
        )
    })
}

fn running_as_root() -> bool {
    let ran = crate::support::run(Command::new("id").arg("-u"));
    ran.stdout.trim() == "0"
}

impl Postgres {
    /// Makes a cluster in a temp dir and starts it, waiting (bounded) until
    /// it accepts connections.
    pub(crate) fn start() -> Postgres {
        crate::support::require_tool("psql");
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = running_as_root();
        if as_postgres {
            let ran = crate::support::run(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path()),
            );
            assert_eq!(ran.code, Some(0), "chown to postgres failed:\n{ran}");
        }
        let data = dir.path().join("data");
        let mut pg = Postgres {
            bin,
            data,
            as_postgres,
            port: 0,
            dir,
        };
        let ran = pg.tool(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                // initdb's own files: the server itself runs with fsync=on.
                "--no-sync",
            ],
        );
        assert_eq!(ran.code, Some(0), "initdb failed:\n{ran}");
        // A port taken between free_addr and the server's bind makes
        // pg_ctl fail: try a few.
        for _ in 0..5 {
            let port = free_addr().port();
            let ran = pg.pg_ctl_start(port);
            if ran.code == Some(0) {
                pg.port = port;
                return pg;
            }
            eprintln!(
                "pg_ctl start on port {port} failed, retrying:\n{ran}\n{}",
                pg.log()
            );
        }
        panic!("PostgreSQL did not start:\n{}", pg.log());
    }

    /// `pg_ctl start` on `port`, waiting (at most 30 s) until it accepts
    /// connections.
    fn pg_ctl_start(&self, port: u16) -> Ran {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let data = self.data.display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "start", "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30",
            ],
        )
    }

    /// `pg_ctl stop -m immediate`: the server stops at once, without a
    /// checkpoint, as in a crash; what it acknowledged must survive.
    fn stop_immediate(&self) -> Ran {
        let data = self.data.display().to_string();
        self.tool(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"],
        )
    }

    /// Crashes the server (immediate stop) and starts it again on the same
    /// port, so that it recovers from its write-ahead log.
    pub(crate) fn crash_and_restart(&self) {
        let ran = self.stop_immediate();
        assert_eq!(ran.code, Some(0), "pg_ctl stop failed:\n{ran}");
        let ran = self.pg_ctl_start(self.port);
        assert_eq!(ran.code, Some(0), "restart failed:\n{ran}\n{}", self.log());
    }

    /// Runs one of the server tools (as `postgres` when we are root).
    fn tool(&self, name: &str, args: &[&str]) -> Ran {
        let path = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.args(args).current_dir(self.dir.path());
        run_bounded(cmd, b"", LIMIT)
    }

    /// The server's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`, creating database `db`
    /// when it is not `postgres`.
    pub(crate) fn url(&self, db: &str) -> String {
        if db != "postgres" {
            self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
        }
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of database `db` (which must exist) over the Unix socket:
    /// the host is the socket's directory, percent-encoded.
    pub(crate) fn socket_url(&self, db: &str) -> String {
        let dir = self.dir.path().display().to_string();
        let host: String = dir
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c.to_string(),
                other => format!("%{:02X}", u32::from(other)),
            })
            .collect();
        format!("postgres://postgres@{host}:{}/{db}", self.port)
    }

    /// Runs SQL with `psql` in database `db` and returns its unaligned,
    /// tuples-only output; panics when it fails.
    pub(crate) fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = Command::new("psql");
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ]);
        let ran = run_bounded(cmd, b"", LIMIT);
        assert_eq!(
            ran.code,
            Some(0),
            "psql failed: {sql}\n{ran}\n{}",
            self.log()
        );
        ran.stdout
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self.stop_immediate();
        }
    }
}
