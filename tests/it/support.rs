//! Helpers shared by the end-to-end tests: locating the built binaries,
//! running commands, checking that real peers are installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The path of a workspace binary (`minica`, `minica-sidecar`) built next to
/// this test binary (`target/<profile>/`).
pub(crate) fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/it-<hash> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A `minica` command with `--home HOME`, run in `cwd`, with a clean
/// environment for the variables minica reads.
pub(crate) fn minica(home: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin("minica"));
    cmd.current_dir(cwd)
        .env_remove("MINICA_HOME")
        .env_remove("MINICA_STORE")
        .arg("--home")
        .arg(home);
    cmd
}

/// What a finished command gave: exit code and text output.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Exit code (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Ran {
    /// Panics with both outputs unless the command exited 0.
    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "command failed:\n{self}");
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub(crate) fn code(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to completion and captures its output.
pub(crate) fn run(cmd: &mut Command) -> Ran {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Panics with an install hint unless `tool` is on PATH. Tests never skip
/// silently: a missing peer is a failed test (scripts/test.sh installs them).
pub(crate) fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run scripts/test.sh, which installs the test peers"
    );
}

/// A scratch directory with a CA home (`home/`) and a working directory
/// (`work/`) in which commands run; everything is removed when dropped.
/// Test modules add their own helpers in `impl Scratch` blocks.
pub(crate) struct Scratch {
    /// The temporary directory holding both.
    pub(crate) dir: tempfile::TempDir,
    /// The CA home.
    pub(crate) home: PathBuf,
    /// The working directory (`./NAME/` outputs land here).
    pub(crate) work: PathBuf,
}

impl Scratch {
    /// An empty scratch directory: no CA yet.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Scratch { dir, home, work }
    }

    /// `minica --home HOME <args>` run in `work/`.
    pub(crate) fn minica(&self, args: &[&str]) -> Ran {
        run(minica(&self.home, &self.work).args(args))
    }

    /// `minica --home OTHER <args>` run in `work/` (a second, unrelated CA).
    pub(crate) fn minica_in(&self, home: &Path, args: &[&str]) -> Ran {
        run(minica(home, &self.work).args(args))
    }

    /// `openssl <args>` run in `work/`.
    pub(crate) fn openssl(&self, args: &[&str]) -> Ran {
        require_tool("openssl");
        run(Command::new("openssl").current_dir(&self.work).args(args))
    }

    /// A path under `work/`.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    /// The text of a file under `work/`.
    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}
