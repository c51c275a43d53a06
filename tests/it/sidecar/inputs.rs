//! Bad input and config files: exit codes and messages that name the flag,
//! file, route, key or address; several routes in one process.

use std::path::Path;
use std::process::Command;

use super::fixtures::{Pki, Validity};
use super::harness::*;
use super::{connections, s};
use crate::support::{self, require_tool};

#[test]
fn bad_input_exits_2_naming_the_file_or_address() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let leaf = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let base = |listen: &str, key: &Path| {
        vec![
            "inbound".to_string(),
            "--listen".into(),
            listen.into(),
            "--upstream".into(),
            "127.0.0.1:9".into(),
            "--cert".into(),
            s(&leaf.file("chain.pem")),
            "--key".into(),
            s(key),
            "--ca".into(),
            s(&leaf.file("ca.pem")),
        ]
    };
    let free = free_addr().to_string();

    let missing = d.join("missing-key.pem");
    let ran = sidecar_run(base(&free, &missing)).code(2);
    assert!(ran.stderr.contains(&s(&missing)), "{ran}");

    // A key path that cannot be read as a file (we run as root, so chmod
    // would not stop us): a directory.
    let ran = sidecar_run(base(&free, d)).code(2);
    assert!(ran.stderr.contains(&s(d)), "{ran}");

    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let ran = sidecar_run(base(&free, &garbage)).code(2);
    assert!(
        ran.stderr.contains(&s(&garbage)) && ran.stderr.contains("no private key"),
        "{ran}"
    );

    // A key that does not match the certificate.
    let other = pki.issue(&d.join("other"), "svc-x", Validity::Current);
    let ran = sidecar_run(base(&free, &other.file("key.pem"))).code(2);
    assert!(ran.stderr.contains(&s(&other.file("key.pem"))), "{ran}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let ran = sidecar_run(base(&busy_addr, &leaf.file("key.pem"))).code(2);
    assert!(
        ran.stderr
            .contains(&format!("cannot listen on {busy_addr}")),
        "{ran}"
    );

    // Every bad value is reported at once.
    let mut args = base("nope", &leaf.file("key.pem"));
    args.extend(
        [
            "--handshake-timeout",
            "10",
            "--allow",
            "svc-a",
            "--protocol",
            "smtp",
        ]
        .map(String::from),
    );
    let ran = sidecar_run(args).code(2);
    for want in [
        "--listen",
        "--handshake-timeout",
        "--allow",
        "expected tcp or mysql",
    ] {
        assert!(ran.stderr.contains(want), "{want}: {ran}");
    }

    // Outbound without --server-name is a usage error.
    let ran = sidecar_run([
        "outbound",
        "--listen",
        &free,
        "--upstream",
        "127.0.0.1:9",
        "--identity",
        &s(&leaf.dir),
    ])
    .code(2);
    assert!(ran.stderr.contains("--server-name"), "{ran}");
}

#[test]
fn check_and_run_a_config_file_with_several_routes() {
    require_tool("curl");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("svc-b"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("svc-a"), "svc-a", Validity::Current);
    let backend = http_backend("from-config-routes");
    let (inb, outb, admin) = (free_addr(), free_addr(), free_addr());
    let config = format!(
        r#"admin = "{admin}"
log_format = "text"

[[route]]
name = "b-in"
direction = "inbound"
listen = "{inb}"
upstream = "{backend}"
identity = "{server}"
allow = ["spiffe://minica.internal/svc-a"]
handshake_timeout = "5s"

[[route]]
name = "a-out"
direction = "outbound"
listen = "{outb}"
upstream = "{inb}"
cert = "{cert}"
key = "{key}"
ca = "{ca}"
server_name = "svc-b"
allow = ["spiffe://minica.internal/svc-b", "dns:svc-b"]
idle_timeout = "1m"
max_connections = 100
"#,
        server = s(&server.dir),
        cert = s(&client.file("chain.pem")),
        key = s(&client.file("key.pem")),
        ca = s(&client.file("ca.pem")),
    );
    let good = d.join("good.toml");
    std::fs::write(&good, &config).unwrap();
    let ran = sidecar_run(["check", "--config", &s(&good)]).ok();
    assert!(ran.stdout.contains("ok (2 routes)"), "{ran}");

    let unknown = d.join("unknown.toml");
    std::fs::write(&unknown, config.replace("max_connections", "max_conns")).unwrap();
    let ran = sidecar_run(["check", "--config", &s(&unknown)]).code(2);
    for want in [s(&unknown).as_str(), "a-out", "max_conns"] {
        assert!(ran.stderr.contains(want), "{want}: {ran}");
    }
    let bad_value = d.join("bad-value.toml");
    std::fs::write(&bad_value, config.replace("\"5s\"", "\"5 parsecs\"")).unwrap();
    let ran = sidecar_run(["check", "--config", &s(&bad_value)]).code(2);
    for want in [s(&bad_value).as_str(), "b-in", "handshake_timeout"] {
        assert!(ran.stderr.contains(want), "{want}: {ran}");
    }
    let syntax = d.join("syntax.toml");
    std::fs::write(&syntax, "[[route]\nname=").unwrap();
    let ran = sidecar_run(["check", "--config", &s(&syntax)]).code(2);
    assert!(ran.stderr.contains(&s(&syntax)), "{ran}");
    let missing_file = d.join("missing-file.toml");
    std::fs::write(
        &missing_file,
        config.replace(&s(&client.file("key.pem")), "/nonexistent/key.pem"),
    )
    .unwrap();
    let ran = sidecar_run(["check", "--config", &s(&missing_file)]).code(2);
    assert!(ran.stderr.contains("/nonexistent/key.pem"), "{ran}");

    let mut p = sidecar(d, "run", ["run", "--config", &s(&good)]);
    wait_ready(&mut p, admin);
    let ran = support::run(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://{outb}/")),
    )
    .ok();
    assert_eq!(ran.stdout, "from-config-routes");
    wait_metric(admin, &connections("b-in", "inbound", "closed"), 1.0);
    wait_metric(admin, &connections("a-out", "outbound", "closed"), 1.0);
}
