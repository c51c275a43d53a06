//! CA crash safety: `minica` commands killed with SIGKILL at random moments,
//! one at a time and several at once on one home, then the CA is checked:
//! the ledger opens, no serial twice, every reported success recorded,
//! every reported revocation in the next CRL, every file left in an output
//! directory either whole (and recorded) or absent, and the CA still issues.
//!
//! Iterations: `MINICA_CRASH_ITERATIONS` (default 200, capped at 40 s; the concurrent test runs a sixth as many rounds of three, capped at 20 s); the
//! seed of the random delays is printed (`MINICA_HARDEN_SEED` replays it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use rcgen::PublicKeyData;

use super::{env_usize, Budget, Rng};
use crate::support::{self, minica, run};

/// The window in which runs are killed: a random delay up to twice what one
/// `minica issue` takes here, measured (a debug build takes 20 to 100 ms
/// depending on the machine and its load), so that many runs are cut
/// somewhere inside, and `revoke` and `renew` (which do more) still finish
/// now and then.
fn kill_window(home: &Path, cwd: &Path) -> u64 {
    let slowest = (0..3)
        .map(|i| {
            let start = std::time::Instant::now();
            run(minica(home, cwd)
                .args(["issue", &format!("calibrate{i}"), "--out"])
                .arg(cwd.join("out").join(format!("calibrate{i}"))))
            .ok();
            start.elapsed()
        })
        .max()
        .unwrap_or_default();
    let ms = u64::try_from(slowest.as_millis()).unwrap_or(u64::MAX);
    (2 * ms).max(5)
}
/// Time cap of the single-process loop.
const LOOP_TIME: Duration = Duration::from_secs(40);

/// A command under test. Adding one (e.g. `renew`) is one line in
/// [`commands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Issue,
    Revoke,
    Renew,
}

/// The commands this `minica` has, among those the test knows.
fn commands() -> Vec<Op> {
    let help = run(Command::new(support::bin("minica")).arg("--help")).stdout;
    let has = |c: &str| help.lines().any(|l| l.trim_start().starts_with(c));
    [
        ("issue", Op::Issue),
        ("revoke", Op::Revoke),
        ("renew", Op::Renew),
    ]
    .into_iter()
    .filter(|(name, _)| has(name))
    .map(|(_, op)| op)
    .collect()
}

/// What one run was, and what it reported.
#[derive(Debug)]
struct Attempt {
    op: Op,
    name: String,
    out: PathBuf,
    /// Exit code when it finished before the kill.
    code: Option<i32>,
}

/// Everything the runs reported as done.
#[derive(Debug, Default)]
struct Reported {
    /// Names with a successful issue (their out dir holds the cert).
    issued: Vec<(String, PathBuf)>,
    /// Names reported revoked.
    revoked: BTreeSet<String>,
    /// Names reported renewed (their out dir holds the new cert).
    renewed: Vec<(String, PathBuf)>,
    panics: Vec<String>,
    /// Runs that exited non-zero (only the first few are printed).
    failures: usize,
}

fn spawn(home: &Path, cwd: &Path, op: Op, name: &str, out: &Path) -> Child {
    let mut cmd = minica(home, cwd);
    match op {
        Op::Issue => cmd.arg("issue").arg(name).arg("--out").arg(out),
        Op::Revoke => cmd.arg("revoke").arg(name),
        Op::Renew => cmd.arg("renew").arg(name).arg("--out").arg(out),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills `child` after `delay` unless it finished; returns its exit code if
/// it finished on its own. The child is always reaped.
fn kill_after(mut child: Child, delay: Duration) -> (Option<i32>, String) {
    let end = std::time::Instant::now() + delay;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (status.code(), err);
        }
        if std::time::Instant::now() >= end {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            return (None, String::new());
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn record(rep: &mut Reported, a: &Attempt, stderr: &str) {
    if a.code == Some(101) || stderr.contains("panicked") {
        rep.panics.push(format!("{a:?}: {stderr}"));
    }
    if a.code.is_some_and(|c| c != 0) && rep.failures < 5 {
        // A refusal (e.g. revoking a revoked name is fine, but a ledger that
        // no longer opens is not): shown to explain a later failure.
        rep.failures += 1;
        eprintln!("{a:?} exited {:?}: {}", a.code, stderr.trim());
    }
    if a.code != Some(0) {
        return;
    }
    match a.op {
        Op::Issue => rep.issued.push((a.name.clone(), a.out.clone())),
        Op::Revoke => {
            rep.revoked.insert(a.name.clone());
        }
        Op::Renew => rep.renewed.push((a.name.clone(), a.out.clone())),
    }
}

/// The ledger as `list --all --json` gives it: serial → (name, status).
fn ledger(home: &Path, cwd: &Path) -> BTreeMap<String, (String, String)> {
    let ran = run(minica(home, cwd).args(["list", "--all", "--json"])).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    let mut out = BTreeMap::new();
    for r in &rows {
        let serial = r["serial"].as_str().unwrap().to_string();
        let name = r["name"].as_str().unwrap().to_string();
        let status = r["status"].as_str().unwrap().to_string();
        assert!(
            out.insert(serial.clone(), (name, status)).is_none(),
            "serial {serial} appears twice in the ledger"
        );
    }
    out
}

fn serial_of(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    c.raw_serial().iter().map(|b| format!("{b:02x}")).collect()
}

/// The serials on the CRLs of a fresh `minica crl`.
fn crl_serials(home: &Path, cwd: &Path) -> BTreeSet<String> {
    let file = cwd.join("check-crl.pem");
    run(minica(home, cwd).arg("crl").arg("--out").arg(&file)).ok();
    let bytes = std::fs::read(&file).unwrap();
    let mut out = BTreeSet::new();
    for der in minica_pki::pem::parse_crls(&file, &bytes).unwrap() {
        let info = minica_ca::crl::CrlInfo::parse(&der).unwrap();
        for e in &info.entries {
            out.insert(e.serial_hex().trim_start_matches('0').to_string());
        }
    }
    out
}

/// A staged file left by a killed run may hold a private key: it must then
/// be 0600 like the key it was to become.
fn assert_private_if_key(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if bytes.windows(11).any(|w| w == b"PRIVATE KEY") {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            0o600,
            "{} holds a key with mode {mode:o}",
            path.display()
        );
    }
}

/// Checks every output directory: each file whole or absent, a cert on disk
/// recorded, a key matching its cert; returns the temp files left over.
fn check_out_dirs(dirs: &BTreeSet<PathBuf>, ledger: &BTreeMap<String, (String, String)>) -> usize {
    let mut temps = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue; // never created
        };
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            match name.as_str() {
                "cert.pem" | "chain.pem" | "key.pem" | "ca.pem" => {}
                // Staged files of a run killed before the rename: they are
                // under a name no reader uses, and may be partial.
                n if n.starts_with(".minica-tmp-") => {
                    temps += 1;
                    assert_private_if_key(&dir.join(n));
                }
                other => panic!("unexpected file {other} in {}", dir.display()),
            }
        }
        let cert = dir.join("cert.pem");
        let certs = std::fs::read(&cert).ok().map(|b| {
            minica_pki::pem::parse_certs(&cert, &b)
                .unwrap_or_else(|e| panic!("half-written {}: {e}", cert.display()))
        });
        if let Some(certs) = &certs {
            assert_eq!(certs.len(), 1, "{}", cert.display());
            let serial = serial_of(&certs[0]);
            assert!(
                ledger.contains_key(&serial),
                "{} holds serial {serial}, which the ledger does not know",
                cert.display()
            );
        }
        let chain = dir.join("chain.pem");
        if let Ok(b) = std::fs::read(&chain) {
            let c = minica_pki::pem::parse_certs(&chain, &b)
                .unwrap_or_else(|e| panic!("half-written {}: {e}", chain.display()));
            assert_eq!(c.len(), 2, "{}", chain.display());
        }
        let ca = dir.join("ca.pem");
        if let Ok(b) = std::fs::read(&ca) {
            minica_pki::pem::parse_certs(&ca, &b)
                .unwrap_or_else(|e| panic!("half-written {}: {e}", ca.display()));
        }
        let key = dir.join("key.pem");
        if let Ok(b) = std::fs::read_to_string(&key) {
            let kp = rcgen::KeyPair::from_pem(&b)
                .unwrap_or_else(|e| panic!("half-written {}: {e}", key.display()));
            if let Some(certs) = &certs {
                let (_, c) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
                assert_eq!(
                    c.public_key().raw,
                    kp.subject_public_key_info().as_slice(),
                    "{} does not match {}",
                    key.display(),
                    cert.display()
                );
            }
        }
    }
    temps
}

/// All the checks after the killing.
fn check_ca(home: &Path, cwd: &Path, rep: &Reported, dirs: &BTreeSet<PathBuf>) {
    assert!(rep.panics.is_empty(), "minica panicked: {:#?}", rep.panics);
    let ledger = ledger(home, cwd);
    for (name, out) in rep.issued.iter().chain(&rep.renewed) {
        let cert = out.join("cert.pem");
        let der = std::fs::read(&cert)
            .ok()
            .and_then(|b| minica_pki::pem::parse_certs(&cert, &b).ok())
            .unwrap_or_else(|| panic!("{name}: reported issued, but {} is gone", cert.display()));
        let serial = serial_of(&der[0]);
        assert!(
            ledger.contains_key(&serial),
            "{name}: reported issued (serial {serial}) but not in the ledger"
        );
    }
    let on_crl = crl_serials(home, cwd);
    for name in &rep.revoked {
        let revoked: Vec<_> = ledger
            .iter()
            .filter(|(_, (n, st))| n == name && st == "revoked")
            .map(|(s, _)| s.trim_start_matches('0').to_string())
            .collect();
        assert!(
            !revoked.is_empty(),
            "{name}: reported revoked, ledger says not"
        );
        for s in revoked {
            assert!(on_crl.contains(&s), "{name} ({s}) is not on the next CRL");
        }
    }
    let temps = check_out_dirs(dirs, &ledger);
    // The home itself: no stray files besides the CA's own (and temps).
    for e in std::fs::read_dir(home).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            matches!(
                n.as_str(),
                "ca.json"
                    | "root.pem"
                    | "root-key.pem"
                    | "intermediate.pem"
                    | "intermediate-key.pem"
                    | "bundle.pem"
                    | "crl.pem"
                    | "ledger.redb"
                    | "lock"
            ) || n.starts_with(".minica-tmp-"),
            "unexpected file {n} in the CA home"
        );
        if n.starts_with(".minica-tmp-") {
            assert_private_if_key(&home.join(&n));
        }
    }
    // The CA still issues, and what it issues verifies.
    let out = cwd.join("after-crash");
    run(minica(home, cwd)
        .args(["issue", "after-crash", "--out"])
        .arg(&out))
    .ok();
    run(minica(home, cwd).arg("verify").arg(out.join("chain.pem"))).ok();
    eprintln!(
        "crash check: {} ledger records, {} issues and {} revocations reported, {} temp files left",
        ledger.len(),
        rep.issued.len(),
        rep.revoked.len(),
        temps
    );
}

/// Copies a home whose ledger no longer opens next to the temp dir (kept
/// for diagnosis) and lists its files.
fn keep_corrupt_home(home: &Path, run_index: usize, stderr: &str) {
    let keep = std::env::temp_dir().join(format!("minica-corrupt-ledger-{}", std::process::id()));
    let _ = Command::new("cp").arg("-a").arg(home).arg(&keep).status();
    let files: Vec<String> = std::fs::read_dir(home)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    eprintln!(
        "LEDGER CORRUPT at run {run_index}: {}\n  copy kept in {}\n  home files: {files:?}",
        stderr.trim(),
        keep.display()
    );
}

#[test]
fn sigkill_at_random_moments_leaves_a_consistent_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).arg("init")).ok();
    let ops = commands();
    assert!(
        ops.contains(&Op::Issue) && ops.contains(&Op::Revoke),
        "{ops:?}"
    );
    let window = kill_window(&home, &cwd);
    let mut rng = Rng::new("crash");
    let budget = Budget::new(env_usize("MINICA_CRASH_ITERATIONS", 200), LOOP_TIME);
    let mut rep = Reported::default();
    let mut dirs = BTreeSet::new();
    let mut saved = false;
    let mut killed = 0;
    let mut i = 0;
    while budget.allows(i) {
        // Issue most of the time; revoke or renew a name issued earlier.
        let op = if rep.issued.is_empty() || rng.below(3) > 0 {
            Op::Issue
        } else {
            ops[usize::try_from(rng.below(ops.len() as u64)).unwrap()]
        };
        let (name, out) = match op {
            Op::Issue => {
                let name = format!("n{i}");
                let out = cwd.join("out").join(&name);
                (name, out)
            }
            _ => {
                let k = usize::try_from(rng.below(rep.issued.len() as u64)).unwrap();
                let name = rep.issued[k].0.clone();
                (name, cwd.join("out").join(format!("renew{i}")))
            }
        };
        dirs.insert(out.clone());
        let child = spawn(&home, &cwd, op, &name, &out);
        let delay = Duration::from_millis(rng.below(window));
        let (code, stderr) = kill_after(child, delay);
        killed += usize::from(code.is_none());
        let a = Attempt {
            op,
            name,
            out,
            code,
        };
        if stderr.contains("corrupt") && !saved {
            saved = true;
            keep_corrupt_home(&home, i, &stderr);
        }
        record(&mut rep, &a, &stderr);
        i += 1;
    }
    eprintln!("crash: {i} runs, {killed} killed before they finished (window {window} ms)");
    // Many runs must really be cut short, or the test proves little.
    assert!(killed * 4 >= i, "only {killed} of {i} runs were killed");
    check_ca(&home, &cwd, &rep, &dirs);
}

#[test]
fn concurrent_issuers_some_killed_keep_distinct_serials() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).arg("init")).ok();
    let window = kill_window(&home, &cwd);
    let mut rng = Rng::new("concurrent crash");
    let rounds = env_usize("MINICA_CRASH_ITERATIONS", 200) / 6;
    let budget = Budget::new(rounds.max(5), Duration::from_secs(20));
    let mut rep = Reported::default();
    let mut dirs = BTreeSet::new();
    let mut round = 0;
    while budget.allows(round) {
        // Three processes at once on one home; one of them is killed.
        let victim = rng.below(3);
        // Three at once take longer: the victim may wait for the lock.
        let delay = Duration::from_millis(rng.below(window * 2));
        let mut running = Vec::new();
        for p in 0..3u64 {
            let name = format!("c{round}-{p}");
            let out = cwd.join("out").join(&name);
            dirs.insert(out.clone());
            let child = spawn(&home, &cwd, Op::Issue, &name, &out);
            running.push((p, name, out, child));
        }
        for (p, name, out, child) in running {
            // The others get the whole lock wait (bounded by minica's own
            // 30 s lock timeout and this test's budget).
            let limit = if p == victim {
                delay
            } else {
                Duration::from_secs(40)
            };
            let (code, stderr) = kill_after(child, limit);
            if p != victim {
                assert_eq!(code, Some(0), "{name}: {stderr}");
            }
            let a = Attempt {
                op: Op::Issue,
                name,
                out,
                code,
            };
            record(&mut rep, &a, &stderr);
        }
        round += 1;
    }
    eprintln!("concurrent crash: {round} rounds of 3 processes");
    check_ca(&home, &cwd, &rep, &dirs);
}

/// A home written by an earlier minica keeps its ledger in sled
/// (`ledger/`): the first command imports it into `ledger.redb`, and the CA
/// goes on knowing every certificate, revocation and CRL number. The sled
/// ledger is built here in the layout those versions wrote, from what a
/// fresh CA recorded, with an unfinished snapshot of the kind a SIGKILL
/// left behind (sled #1527), which the import must survive.
#[test]
fn a_sled_ledger_of_an_earlier_version_is_imported_on_first_use() {
    use minica_ca::store::Store;
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).args(["issue", "before"])).ok();
    run(minica(&home, &cwd).args(["issue", "gone"])).ok();
    run(minica(&home, &cwd).args(["revoke", "gone"])).ok();
    let (records, crl_numbers) = {
        let store = minica_ca::store::RedbStore::open(&home.join("ledger.redb")).unwrap();
        let records = store.all().unwrap();
        let numbers: Vec<_> = records
            .iter()
            .filter_map(|r| Some((r.serial.clone(), store.crl_number(&r.serial).unwrap()?)))
            .collect();
        (records, numbers)
    };
    assert_eq!(records.len(), 4, "root, intermediate, two leaves");
    assert!(!crl_numbers.is_empty(), "revoke published CRLs");
    std::fs::remove_file(home.join("ledger.redb")).unwrap();
    let sled_dir = home.join("ledger");
    {
        let db = sled::open(&sled_dir).unwrap();
        for rec in &records {
            let serial = rec.serial.as_bytes();
            db.insert(
                [&b"c/"[..], serial].concat(),
                serde_json::to_vec(rec).unwrap(),
            )
            .unwrap();
            let name = rec.name.to_ascii_lowercase();
            db.insert(
                [b"n/", name.as_bytes(), b"\0", serial].concat(),
                &[] as &[u8],
            )
            .unwrap();
        }
        for (issuer, n) in &crl_numbers {
            db.insert([&b"k/"[..], issuer.as_bytes()].concat(), &n.to_be_bytes())
                .unwrap();
        }
        db.flush().unwrap();
    }
    std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFF0.generating"), b"").unwrap();

    let listed = run(minica(&home, &cwd).args(["list", "--all", "--json"])).ok();
    assert!(home.join("ledger.redb").is_file());
    assert!(home.join("ledger.sled-imported").is_dir() && !sled_dir.exists());
    for rec in &records {
        assert!(listed.stdout.contains(&rec.serial.to_hex()), "{listed}");
    }
    // The CA still knows what it issued and revoked.
    let again = run(minica(&home, &cwd).args(["issue", "before", "--out", "elsewhere"])).code(2);
    assert!(
        again.stderr.contains("already has an active certificate"),
        "{again}"
    );
    let crl_file = cwd.join("crl.pem");
    run(minica(&home, &cwd).args(["crl", "--out"]).arg(&crl_file)).ok();
    let gone = records.iter().find(|r| r.name == "gone").unwrap();
    let crl_text = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&crl_file))
    .ok();
    assert!(
        crl_text
            .stdout
            .to_ascii_uppercase()
            .contains(&gone.serial.to_hex().to_ascii_uppercase()),
        "{crl_text}"
    );
    run(minica(&home, &cwd).args(["issue", "after"])).ok();
}

/// A ledger file damaged beyond redb's recovery (here: not a redb file at
/// all) is reported naming the file, exit 2, and nothing is overwritten.
#[test]
fn a_damaged_ledger_file_is_reported_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).arg("init")).ok();
    let ledger = home.join("ledger.redb");
    std::fs::write(&ledger, b"definitely not a redb file, but a user's mistake").unwrap();
    let out = run(minica(&home, &cwd).args(["issue", "x"])).code(2);
    assert!(out.stderr.contains("ledger.redb"), "{out}");
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        b"definitely not a redb file, but a user's mistake"
    );
    assert!(!cwd.join("x").exists());
}
