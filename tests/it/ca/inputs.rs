//! Bad inputs: exit 2, a message naming the argument or file, nothing written.

use super::{tree, Scratch};

/// Runs `minica` with `args` and checks: exit 2, stderr names `needle`, and
/// neither the work directory nor the CA home changed.
#[track_caller]
fn refused(s: &Scratch, args: &[&str], needle: &str) {
    // sled may rename its own files when opened: the ledger is checked
    // through `minica list` instead.
    let home_tree = || -> Vec<String> {
        tree(&s.home)
            .into_iter()
            .filter(|p| !p.starts_with("ledger"))
            .collect()
    };
    let (work, home) = (tree(&s.work), home_tree());
    let ran = s.minica(args).code(2);
    assert!(
        ran.stderr.contains(needle),
        "stderr should name {needle:?}:\n{ran}"
    );
    assert!(!ran.stderr.contains("panicked"), "{ran}");
    assert_eq!(tree(&s.work), work, "{args:?} wrote into the work dir");
    assert_eq!(home_tree(), home, "{args:?} changed the CA home");
}

#[test]
fn bad_arguments_write_nothing_not_even_a_ca() {
    let s = Scratch::new();
    refused(&s, &["issue", "x", "--key-type", "dsa"], "--key-type");
    refused(&s, &["issue", "x", "--valid", "3q"], "--valid");
    refused(&s, &["issue", "x", "--valid", "0d"], "--valid");
    refused(&s, &["issue", "x", "--dns", "a b"], "--dns");
    refused(&s, &["issue", "x", "--ip", "300.1.1.1"], "--ip");
    refused(&s, &["issue", "x", "--uri", "noscheme"], "--uri");
    refused(&s, &["issue", "x", "--server", "--client"], "--client");
    for bad in ["../x", "a b", "", "a/b", "..", "a\u{7}b", "-x-"] {
        refused(&s, &["issue", "--", bad], "NAME");
    }
    refused(&s, &["issue", "x", "--csr", "missing.pem"], "missing.pem");
    refused(
        &s,
        &["init", "--root-valid", "1y", "--intermediate-valid", "2y"],
        "--intermediate-valid",
    );
    refused(&s, &["init", "--trust-domain", "Not Valid"], "Not Valid");
    refused(&s, &["list"], "no CA");
    refused(&s, &["--store", "garbage", "list"], "--store");
    refused(&s, &["--store", "postgres://db/minica", "list"], "no CA");
    assert!(!s.home.join("ca.json").exists());
}

#[test]
fn conflicts_with_existing_state_write_nothing() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a"]).ok();
    // Duplicate NAME: the plain re-run names the real problem and the fix,
    // even though its files are also in the way.
    refused(&s, &["issue", "svc-a"], "minica renew svc-a");
    // Duplicate NAME, even into another directory and in another case.
    refused(
        &s,
        &["issue", "svc-a", "--out", "elsewhere"],
        "minica renew",
    );
    refused(
        &s,
        &["issue", "SVC-A", "--out", "elsewhere"],
        "already has an active certificate",
    );
    // The output directory already holds the files.
    refused(&s, &["issue", "svc-b", "--out", "svc-a"], "--force");
    // An output directory that cannot be created (a file is in the way).
    std::fs::write(s.path("plain-file"), "x").unwrap();
    refused(
        &s,
        &["issue", "svc-c", "--out", "plain-file/sub"],
        "plain-file",
    );
    // Leaf outliving the intermediate.
    refused(&s, &["issue", "svc-d", "--valid", "6y"], "--valid");
    // --force replaces the files (for a new name).
    s.minica(&["issue", "svc-e", "--out", "svc-a", "--force"])
        .ok();
    let list = s.minica(&["list", "--json"]).ok().stdout;
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4, "{list}");
}

/// An existing directory where no file can be created, even by root:
/// staging fails after signing, and the certificate must not be recorded.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_out_dir_records_nothing() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    let ran = s.minica(&["issue", "svc", "--out", "/proc/self"]).code(2);
    assert!(ran.stderr.contains("/proc/self/"), "{ran}");
    let list = s.minica(&["list", "--json"]).ok().stdout;
    assert!(
        !list.contains("\"svc\""),
        "an unwritten certificate was recorded: {list}"
    );
    // The name is still free.
    s.minica(&["issue", "svc"]).ok();
}

#[test]
fn bad_csrs_are_refused() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        "ca-req.pem",
        "-subj",
        "/CN=x",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ])
    .ok();
    refused(&s, &["issue", "x", "--csr", "ca-req.pem"], "CA:TRUE");
    // Flip one bit of the signature of a good CSR (DER form).
    s.openssl(&[
        "req", "-new", "-key", "k.pem", "-subj", "/CN=y", "-outform", "DER", "-out", "good.der",
    ])
    .ok();
    let mut der = std::fs::read(s.path("good.der")).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    std::fs::write(s.path("bad-sig.der"), &der).unwrap();
    refused(
        &s,
        &["issue", "y", "--csr", "bad-sig.der"],
        "bad-sig.der: the CSR's signature does not verify",
    );
    std::fs::write(s.path("junk.pem"), "not a csr").unwrap();
    refused(&s, &["issue", "y", "--csr", "junk.pem"], "junk.pem");
    // The good one works.
    s.minica(&["issue", "y", "--csr", "good.der"]).ok();
}
