//! A real MariaDB server for the tests: a temp data directory made by
//! `mariadb-install-db`, `mariadbd` on an ephemeral 127.0.0.1 port with
//! minica certificates, killed and removed on drop (even when a test fails);
//! and the real `mariadb` client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::{self, free_addr, run_bounded, Proc};
use crate::support::{require_tool, Ran};

/// Longest wait for the server to accept connections.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Longest any one client command may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// A running `mariadbd`. Field order matters: the process is killed before
/// its directory is removed.
pub(crate) struct Mariadb {
    proc: Proc,
    pub(crate) port: u16,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn running_as_root() -> bool {
    let ran = crate::support::run(Command::new("id").arg("-u"));
    ran.stdout.trim() == "0"
}

impl Mariadb {
    /// Installs a data directory and starts the server with these options
    /// (`--KEY=VALUE`, e.g. the `[mysqld]` lines of an exported `my.cnf`;
    /// none: no TLS), waiting until it answers on its socket.
    pub(crate) fn start(options: &[String]) -> Mariadb {
        for tool in ["mariadbd", "mariadb-install-db", "mariadb"] {
            require_tool(tool);
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let root = running_as_root();
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if root {
            install.arg("--user=root");
        }
        let ran = run_bounded(install, b"", START_LIMIT);
        assert_eq!(ran.code, Some(0), "mariadb-install-db failed:\n{ran}");
        let port = free_addr().port();
        let socket = dir.path().join("sock");
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args([
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ]);
        if root {
            cmd.arg("--user=root");
        }
        cmd.args(options);
        let mut proc = harness::spawn(cmd, &dir.path().join("mariadbd.log"));
        let end = Instant::now() + START_LIMIT;
        loop {
            proc.assert_running();
            if socket.exists() && root_sql_at(&socket, "SELECT 1").code == Some(0) {
                break;
            }
            assert!(
                Instant::now() < end,
                "mariadbd did not start:\n{}",
                proc.log()
            );
            std::thread::sleep(harness::POLL);
        }
        Mariadb {
            proc,
            port,
            socket,
            _dir: dir,
        }
    }

    /// Runs SQL as root over the Unix socket; panics on failure.
    pub(crate) fn root_sql(&self, sql: &str) -> String {
        let ran = root_sql_at(&self.socket, sql);
        assert_eq!(
            ran.code,
            Some(0),
            "SQL failed: {sql}\n{ran}\n{}",
            self.proc.log()
        );
        ran.stdout
    }
}

fn root_sql_at(socket: &Path, sql: &str) -> Ran {
    let mut cmd = Command::new("mariadb");
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args(["-uroot", "--batch", "--skip-column-names", "-e", sql]);
    run_bounded(cmd, b"", CLIENT_LIMIT)
}

/// TLS options of the `mariadb` client.
pub(crate) enum ClientTls<'a> {
    /// `--skip-ssl`: no TLS at all.
    Off,
    /// The `[client]` section of this option file (`--defaults-file`), e.g.
    /// an exported `my.cnf`, instead of `--no-defaults`.
    Config(&'a Path),
    /// TLS verifying the server against `ca`, with the client certificate
    /// of an identity directory (`chain.pem`, `key.pem`) or none.
    On {
        ca: &'a Path,
        identity: Option<&'a Path>,
    },
}

/// Runs the real `mariadb` client against 127.0.0.1:`port` as `user` and
/// returns what it printed (batch mode, no column names).
pub(crate) fn client(port: u16, user: &str, tls: ClientTls<'_>, sql: &str) -> Ran {
    client_with(port, user, tls, &[], sql)
}

/// Like [`client`], with extra options (`-pPASSWORD`, `--default-auth=…`).
pub(crate) fn client_with(
    port: u16,
    user: &str,
    tls: ClientTls<'_>,
    extra: &[&str],
    sql: &str,
) -> Ran {
    let mut cmd = Command::new("mariadb");
    // The option file, when there is one, must be the first argument.
    match tls {
        ClientTls::Config(file) => cmd.arg(format!("--defaults-file={}", file.display())),
        _ => cmd.arg("--no-defaults"),
    };
    cmd.args(["-h", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .arg(format!("-u{user}"))
        .args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
    match tls {
        ClientTls::Off => {
            cmd.arg("--skip-ssl");
        }
        ClientTls::Config(_) => {}
        ClientTls::On { ca, identity } => {
            cmd.arg(format!("--ssl-ca={}", ca.display()))
                .arg("--ssl-verify-server-cert");
            if let Some(dir) = identity {
                cmd.arg(format!("--ssl-cert={}", dir.join("chain.pem").display()))
                    .arg(format!("--ssl-key={}", dir.join("key.pem").display()));
            }
        }
    }
    cmd.args(extra).arg("-e").arg(sql);
    run_bounded(cmd, b"", CLIENT_LIMIT)
}

/// What the server says about the session: `CURRENT_USER()`, `Ssl_version`
/// and `Ssl_cipher` (empty strings on a plaintext session).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) ssl_version: String,
    pub(crate) ssl_cipher: String,
}

/// The query that [`Session::parse`] reads.
pub(crate) const SESSION_SQL: &str = "SELECT CURRENT_USER(); \
    SHOW SESSION STATUS LIKE 'Ssl_version'; SHOW SESSION STATUS LIKE 'Ssl_cipher'";

impl Session {
    /// Parses the output of [`SESSION_SQL`]; panics with it when the
    /// command failed.
    #[track_caller]
    pub(crate) fn parse(ran: &Ran) -> Session {
        assert_eq!(ran.code, Some(0), "mariadb failed:\n{ran}");
        let mut lines = ran.stdout.lines();
        let user = lines.next().unwrap_or_default().to_string();
        let mut value = |name: &str| {
            let line = lines.next().unwrap_or_default();
            let (k, v) = line.split_once('\t').unwrap_or((line, ""));
            assert_eq!(k, name, "unexpected output:\n{ran}");
            v.to_string()
        };
        let ssl_version = value("Ssl_version");
        let ssl_cipher = value("Ssl_cipher");
        Session {
            user,
            ssl_version,
            ssl_cipher,
        }
    }
}
