//! The security review, as tests: file modes, refusing a CA key others can
//! read, no key material or password in any output or log, no `unsafe`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::sidecar::fixtures::{Pki, Validity};
use crate::sidecar::harness::{free_addr, sidecar, sidecar_run, wait_ready};
use crate::support::{minica, run};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every 24-character window of a key file's base64 lines that appears in
/// `text` (there must be none).
fn key_windows_in(key_pem: &str, text: &str) -> Vec<String> {
    key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| {
            let b = l.as_bytes();
            (0..b.len().saturating_sub(23))
                .step_by(8)
                .map(move |i| String::from_utf8_lossy(&b[i..i + 24]).into_owned())
        })
        .filter(|w| text.contains(w.as_str()))
        .collect()
}

#[test]
fn keys_are_0600_in_a_0700_home_and_a_readable_ca_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).args(["issue", "svc"])).ok();
    assert_eq!(mode(&home), 0o700, "CA home");
    for f in ["root-key.pem", "intermediate-key.pem"] {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&cwd.join("svc")), 0o700, "output directory");
    assert_eq!(mode(&cwd.join("svc/key.pem")), 0o600, "leaf key");

    for (f, bad) in [("intermediate-key.pem", 0o644), ("root-key.pem", 0o640)] {
        let key = home.join(f);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(bad)).unwrap();
        let ran = run(minica(&home, &cwd).args(["issue", "other"])).code(2);
        assert!(
            ran.stderr.contains(f) && ran.stderr.contains("chmod 600"),
            "{f} mode {bad:o}: unclear message:\n{ran}"
        );
        assert!(
            !cwd.join("other").exists(),
            "files written despite the refusal"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    run(minica(&home, &cwd).args(["issue", "other"])).ok();
}

#[test]
fn inspect_and_errors_never_print_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).args(["issue", "svc", "--key-type", "rsa-2048"])).ok();
    run(minica(&home, &cwd).args(["issue", "ed", "--key-type", "ed25519"])).ok();
    let keys = [
        cwd.join("svc/key.pem"),
        cwd.join("ed/key.pem"),
        home.join("intermediate-key.pem"),
        home.join("root-key.pem"),
    ];
    for key in &keys {
        let pem = std::fs::read_to_string(key).unwrap();
        for json in [false, true] {
            let mut cmd = minica(&home, &cwd);
            cmd.arg("inspect").arg(key);
            if json {
                cmd.arg("--json");
            }
            let ran = run(&mut cmd).ok();
            let all = format!("{}{}", ran.stdout, ran.stderr);
            assert!(
                !all.contains("PRIVATE KEY-----"),
                "{}: {all}",
                key.display()
            );
            let leaked = key_windows_in(&pem, &all);
            assert!(
                leaked.is_empty(),
                "inspect {} printed key material",
                key.display()
            );
        }
        // A key where a certificate is expected: the error names the file,
        // never the content.
        let ran = run(minica(&home, &cwd).arg("verify").arg(key));
        assert_ne!(ran.code, Some(0));
        assert!(key_windows_in(&pem, &format!("{}{}", ran.stdout, ran.stderr)).is_empty());
    }
    // Every key in the home and the out dirs is 0600.
    for key in &keys {
        assert_eq!(mode(key), 0o600, "{}", key.display());
    }
}

#[test]
fn the_p12_password_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path().to_path_buf());
    run(minica(&home, &cwd).args(["issue", "app"])).ok();
    let help = run(minica(&home, &cwd).arg("--help")).stdout;
    assert!(help.contains("export"), "no export command:\n{help}");
    let password = "Corr3ct-Horse-Battery-Staple-7f1c";
    let pw = cwd.join("pw");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let ran = run(minica(&home, &cwd)
        .args(["export", "app", "--format", "p12", "--password-file"])
        .arg(&pw))
    .ok();
    assert!(!format!("{}{}", ran.stdout, ran.stderr).contains(password));
    assert_eq!(mode(&cwd.join("app.p12")), 0o600);
    // Again, refused (exists): the error does not echo it either.
    let ran = run(minica(&home, &cwd)
        .args(["export", "app", "--format", "p12", "--password-file"])
        .arg(&pw))
    .code(2);
    assert!(!format!("{}{}", ran.stdout, ran.stderr).contains(password));
}

#[test]
fn sidecar_logs_and_errors_never_hold_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "logs");
    let server = pki.issue(&d.join("server"), "server", Validity::Current);
    let other = pki.issue(&d.join("other"), "other", Validity::Current);
    let key_pem = std::fs::read_to_string(server.file("key.pem")).unwrap();
    let listen = free_addr();
    let admin = free_addr();
    let mut p = sidecar(
        d,
        "keys",
        [
            "inbound",
            "--listen",
            &listen.to_string(),
            "--upstream",
            "127.0.0.1:9",
            "--identity",
            &server.dir.display().to_string(),
            "--admin",
            &admin.to_string(),
        ],
    );
    wait_ready(&mut p, admin);
    // A reload with a key that does not match: logged as an error.
    std::fs::copy(other.file("key.pem"), server.file("key.pem")).unwrap();
    p.signal("HUP");
    std::thread::sleep(Duration::from_millis(800));
    p.signal("TERM");
    let _ = p.wait_exit(Duration::from_secs(10));
    let other_pem = std::fs::read_to_string(other.file("key.pem")).unwrap();
    let log = p.log();
    assert!(!log.is_empty());
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    assert!(
        key_windows_in(&key_pem, &log).is_empty(),
        "key in the log:\n{log}"
    );
    assert!(
        key_windows_in(&other_pem, &log).is_empty(),
        "key in the log:\n{log}"
    );

    // `check` with a mismatched key: the error names files, not contents.
    let toml = d.join("side.toml");
    std::fs::write(
        &toml,
        format!(
            "[[route]]\nname = \"in\"\ndirection = \"inbound\"\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"127.0.0.1:9\"\nidentity = \"{}\"\n",
            server.dir.display()
        ),
    )
    .unwrap();
    let ran = sidecar_run(["check", "--config", &toml.display().to_string()]);
    assert_eq!(ran.code, Some(2), "{ran}");
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(key_windows_in(&other_pem, &all).is_empty(), "{all}");
}

/// `unsafe` is forbidden by the workspace lints; check that no crate opts
/// out and that no source mentions it.
#[test]
fn no_unsafe_code_in_our_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("unsafe_code = \"forbid\""));
    let mut found = Vec::new();
    let mut files = 0;
    let mut stack = vec![];
    for krate in ["ca", "cli", "pki", "sidecar", "probe"] {
        let dir = root.join(krate);
        if !dir.exists() {
            continue;
        }
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            toml.contains("[lints]") && toml.contains("workspace = true"),
            "{krate}/Cargo.toml does not use the workspace lints"
        );
        stack.push(dir.join("src"));
    }
    stack.push(root.join("tests"));
    stack.push(root.join("examples"));
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p.ends_with("hardening/security.rs")
            {
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    let words: Vec<&str> = code
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .collect();
                    if words.contains(&"unsafe") || code.contains("allow(unsafe_code") {
                        found.push(format!("{}:{}: {line}", p.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(files > 20, "only {files} Rust files found");
    assert!(
        found.is_empty(),
        "unsafe in our code:\n{}",
        found.join("\n")
    );
}
