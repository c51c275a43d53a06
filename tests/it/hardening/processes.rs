//! The command lines on mutated files, as processes: `minica-sidecar check
//! --config`, `minica inspect`, `minica verify` and `minica issue --csr`
//! never panic (exit 101) and refuse with exit 2 naming the file. The
//! mutations are those of [`super::parsers`], driven by a seeded PRNG
//! (`MINICA_HARDEN_SEED` replays a run).

use std::path::Path;
use std::time::Duration;

use super::parsers::{apply, seeds_of, Edit};

#[test]
fn sidecar_check_on_mutated_config_files_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let seeds = seeds_of("config", &[]);
    let mut rng = super::Rng::new("sidecar check");
    let budget = super::Budget::new(12, Duration::from_secs(30));
    let mut i = 0;
    while budget.allows(i) {
        let seed = &seeds[usize::try_from(rng.below(seeds.len() as u64)).unwrap()];
        let edits: Vec<Edit> = (0..1 + rng.below(4))
            .map(|_| {
                let p = usize::try_from(rng.below(1 << 20)).unwrap();
                match rng.below(4) {
                    0 => Edit::Flip(p, u8::try_from(rng.below(8)).unwrap()),
                    1 => Edit::Set(p, rng.next().to_le_bytes()[0]),
                    2 => Edit::Delete(p, 1 + usize::try_from(rng.below(16)).unwrap()),
                    _ => Edit::Duplicate(p, 1 + usize::try_from(rng.below(64)).unwrap()),
                }
            })
            .collect();
        let file = tmp.path().join(format!("mutated-{i}.toml"));
        std::fs::write(&file, apply(seed, &edits)).unwrap();
        // The PEM files named in the corpus do not exist here, so even a
        // config that still parses is refused: always exit 2, never a panic.
        let ran = crate::sidecar::harness::sidecar_run([
            "check".to_string(),
            "--config".into(),
            file.display().to_string(),
        ]);
        assert_eq!(ran.code, Some(2), "{edits:?}\n{ran}");
        assert!(
            ran.stderr.contains(&format!("mutated-{i}.toml")),
            "the error does not name the file:\n{ran}"
        );
        i += 1;
    }
}

/// The `minica` command line on mutated files: `inspect` (0 or 2),
/// `verify` (1 or 2, or 0 only for an unchanged certificate) and
/// `issue --csr` (0 or 2) never panic, and what they refuse leaves nothing
/// behind.
#[test]
fn minica_commands_on_mutated_files_never_panic() {
    use crate::support::{minica, run};
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).args(["issue", "seed"])).ok();
    run(minica(&home, &cwd).args(["revoke", "seed"])).ok();
    let files = ["seed/chain.pem", "seed/cert.pem", "home/crl.pem"];
    let mut seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(cwd.join(f)).unwrap())
        .collect();
    seeds.extend(seeds_of("csr", &[]));
    let mut rng = super::Rng::new("minica on mutated files");
    let budget = super::Budget::new(24, Duration::from_secs(20));
    let mut i = 0;
    while budget.allows(i) {
        let seed = &seeds[usize::try_from(rng.below(seeds.len() as u64)).unwrap()];
        let edits: Vec<Edit> = (0..1 + rng.below(3))
            .map(|_| {
                let p = usize::try_from(rng.below(1 << 20)).unwrap();
                match rng.below(3) {
                    0 => Edit::Flip(p, u8::try_from(rng.below(8)).unwrap()),
                    1 => Edit::Truncate(p),
                    _ => Edit::Set(p, rng.next().to_le_bytes()[0]),
                }
            })
            .collect();
        let file = cwd.join(format!("m{i}.pem"));
        std::fs::write(&file, apply(seed, &edits)).unwrap();
        let inspect = run(minica(&home, &cwd).arg("inspect").arg(&file));
        assert!(
            matches!(inspect.code, Some(0 | 2)),
            "inspect {edits:?}:\n{inspect}"
        );
        let verify = run(minica(&home, &cwd).arg("verify").arg(&file));
        assert!(
            matches!(verify.code, Some(0..=2)),
            "verify {edits:?}:\n{verify}"
        );
        if verify.code == Some(0) {
            // Only an edit that left the certificate itself intact (e.g. a
            // cut trailing newline) may still verify.
            let first = |b: &[u8]| {
                minica_pki::pem::parse_certs(Path::new("x"), b)
                    .ok()
                    .and_then(|c| c.into_iter().next())
            };
            let mutated = std::fs::read(&file).unwrap();
            assert_eq!(first(&mutated), first(seed), "false accept: {edits:?}");
        }
        let out = cwd.join(format!("csr{i}"));
        let issue = run(minica(&home, &cwd)
            .args(["issue", &format!("csr{i}"), "--csr"])
            .arg(&file)
            .arg("--out")
            .arg(&out));
        assert!(
            matches!(issue.code, Some(0 | 2)),
            "issue --csr {edits:?}:\n{issue}"
        );
        if issue.code == Some(2) {
            assert!(
                !out.join("cert.pem").exists(),
                "a refused CSR left a certificate"
            );
        }
        i += 1;
    }
}
