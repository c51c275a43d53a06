//! Global options, list, bundle, inspect, and two processes on one home.

use std::process::{Command, Stdio};

use super::Scratch;
use crate::support;

#[test]
fn home_is_accepted_before_or_after_the_subcommand_and_from_the_env() {
    let s = Scratch::new();
    let bin = support::bin("minica");
    let home = s.home.to_str().unwrap();
    let run = |args: &[&str]| {
        support::run(
            Command::new(&bin)
                .current_dir(&s.work)
                .env_remove("MINICA_HOME")
                .env_remove("MINICA_STORE")
                .args(args),
        )
    };
    run(&["--home", home, "issue", "before"]).ok();
    run(&["issue", "after", "--home", home]).ok();
    support::run(
        Command::new(&bin)
            .current_dir(&s.work)
            .env("MINICA_HOME", home)
            .env_remove("MINICA_STORE")
            .args(["issue", "from-env"]),
    )
    .ok();
    let list = run(&["list", "--home", home]).ok().stdout;
    for name in ["before", "after", "from-env"] {
        assert!(list.contains(name), "{list}");
    }
    let rows: serde_json::Value =
        serde_json::from_str(&run(&["list", "--json", "--home", home]).ok().stdout).unwrap();
    let roots = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "root")
        .count();
    assert_eq!(roots, 1, "one CA only:\n{list}");
}

#[test]
fn list_bundle_and_inspect() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a", "--valid", "2d"]).ok();
    s.minica(&["issue", "svc-b"]).ok();
    let rows: serde_json::Value =
        serde_json::from_str(&s.minica(&["list", "--json"]).ok().stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let kinds: Vec<_> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"root") && kinds.contains(&"intermediate"));
    assert!(rows.iter().all(|r| r["status"] == "active"));
    let expiring = s.minica(&["list", "--expiring", "3d"]).ok().stdout;
    assert!(
        expiring.contains("svc-a") && !expiring.contains("svc-b"),
        "{expiring}"
    );
    let text = s.minica(&["list", "--all"]).ok().stdout;
    assert!(
        text.starts_with("NAME") && text.contains("STATUS"),
        "{text}"
    );

    s.minica(&["bundle", "--out", "bundle.pem"]).ok();
    let bundle = std::fs::read(s.path("bundle.pem")).unwrap();
    assert_eq!(bundle, std::fs::read(s.path("svc-a/ca.pem")).unwrap());
    assert_eq!(
        s.minica(&["bundle"]).ok().stdout.as_bytes(),
        bundle.as_slice()
    );

    let json: serde_json::Value = serde_json::from_str(
        &s.minica(&["inspect", "svc-a/chain.pem", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    let leaf = &json["certificates"][0];
    assert_eq!(leaf["sans"]["dns"][0], "svc-a");
    assert_eq!(leaf["ca"], false);
    assert_eq!(json["certificates"][1]["path_len"], 0);
    // The fingerprint matches openssl's.
    let fp = s
        .openssl(&[
            "x509",
            "-in",
            "svc-a/cert.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .ok()
        .stdout;
    assert!(
        fp.contains(leaf["sha256_fingerprint"].as_str().unwrap()),
        "{fp} vs {leaf}"
    );
    // The serial matches openssl's.
    let serial = s
        .openssl(&["x509", "-in", "svc-a/cert.pem", "-noout", "-serial"])
        .ok()
        .stdout;
    assert_eq!(
        serial.trim().to_lowercase(),
        format!("serial={}", leaf["serial"].as_str().unwrap())
    );
    // DER certificates and keys: the key type only.
    s.openssl(&[
        "x509",
        "-in",
        "svc-a/cert.pem",
        "-outform",
        "DER",
        "-out",
        "cert.der",
    ])
    .ok();
    assert!(s
        .minica(&["inspect", "cert.der"])
        .ok()
        .stdout
        .contains("CN=svc-a"));
    let key = s.minica(&["inspect", "svc-a/key.pem"]).ok().stdout;
    let secret = std::fs::read_to_string(s.path("svc-a/key.pem")).unwrap();
    assert!(
        key.contains("ecdsa-p256") && !key.contains(&secret[28..60]),
        "{key}"
    );
    let ran = s.minica(&["inspect", "nope.pem"]).code(2);
    assert!(ran.stderr.contains("nope.pem"), "{ran}");
}

#[test]
fn two_processes_on_one_home_get_distinct_serials() {
    let s = Scratch::new();
    let spawn = |name: &str| {
        support::minica(&s.home, &s.work)
            .args(["issue", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Both start on an empty home: exactly one creates the CA.
    let children: Vec<_> = (0..4).map(|i| spawn(&format!("p{i}"))).collect();
    let mut created = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        created += usize::from(stdout.contains("created a new CA"));
    }
    assert_eq!(created, 1);
    let rows: serde_json::Value =
        serde_json::from_str(&s.minica(&["list", "--json"]).ok().stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    let serials: std::collections::HashSet<_> =
        rows.iter().map(|r| r["serial"].as_str().unwrap()).collect();
    assert_eq!(serials.len(), 6);
    for i in 0..4 {
        s.verify(&format!("p{i}"), &["-purpose", "sslserver"]).ok();
    }
}

/// `minica list | head -1`: a reader that stops early is no error, and
/// never a panic (exit 101).
#[test]
fn a_closed_stdout_pipe_ends_quietly_with_success() {
    let s = Scratch::new();
    s.minica(&["issue", "piped"]).ok();
    for args in [
        &["list", "--all"][..],
        &["bundle"],
        &["inspect", "piped/cert.pem"],
    ] {
        let mut child = support::minica(&s.home, &s.work)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before minica has had time to write.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// CA keys may be stored as PKCS#8 PEM or DER (0600 either way); a SEC1
/// key (`openssl pkey -outform DER` of an EC key) is refused with the
/// command that converts it.
#[test]
fn a_ca_key_stored_as_der_still_issues() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    let key = s.home.join("intermediate-key.pem");
    let key_arg = key.to_str().unwrap();
    s.openssl(&[
        "pkey", "-in", key_arg, "-outform", "DER", "-out", "sec1.der",
    ])
    .ok();
    s.openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", key_arg, "-outform", "DER", "-out", "pk8.der",
    ])
    .ok();
    let write_key = |file: &str| {
        std::fs::copy(s.path(file), &key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    };
    write_key("sec1.der");
    let ran = s.minica(&["issue", "refused"]).code(2);
    assert!(ran.stderr.contains("openssl pkcs8 -topk8"), "{ran}");
    write_key("pk8.der");
    s.minica(&["issue", "der-key"]).ok();
    s.openssl(&[
        "verify",
        "-CAfile",
        "der-key/ca.pem",
        "-untrusted",
        "der-key/chain.pem",
        "der-key/cert.pem",
    ])
    .ok();
}
