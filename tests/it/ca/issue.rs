//! Issued certificates checked by openssl: purposes, path lengths, key
//! types, CSRs.

use super::Scratch;

#[test]
fn default_leaf_verifies_as_server_and_client_with_private_files() {
    let s = Scratch::new();
    let ran = s.minica(&["issue", "svc-a"]).ok();
    assert!(ran.stdout.contains("created a new CA in"), "{ran}");
    assert!(ran.stdout.contains("svc-a/key.pem"), "{ran}");
    s.verify(
        "svc-a",
        &["-purpose", "sslserver", "-verify_hostname", "svc-a"],
    )
    .ok();
    s.verify("svc-a", &["-purpose", "sslclient"]).ok();
    #[cfg(unix)]
    {
        assert_eq!(super::mode(&s.path("svc-a/key.pem")), 0o600);
        assert_eq!(super::mode(&s.home), 0o700);
        assert_eq!(super::mode(&s.home.join("root-key.pem")), 0o600);
        assert_eq!(super::mode(&s.home.join("intermediate-key.pem")), 0o600);
    }
    let text = s
        .openssl(&["x509", "-in", "svc-a/cert.pem", "-noout", "-text"])
        .ok()
        .stdout;
    assert!(text.contains("DNS:svc-a"), "{text}");
    assert!(
        text.contains("URI:spiffe://minica.internal/svc-a"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    assert!(!text.contains("Key Encipherment"), "ECDSA leaf: {text}");
    // The chain is leaf then intermediate; ca.pem is the home's bundle.
    let chain = std::fs::read_to_string(s.path("svc-a/chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(chain.starts_with(&std::fs::read_to_string(s.path("svc-a/cert.pem")).unwrap()));
    assert_eq!(
        std::fs::read(s.path("svc-a/ca.pem")).unwrap(),
        std::fs::read(s.home.join("bundle.pem")).unwrap()
    );
    // A second issue does not create a second CA.
    let ran = s
        .minica(&["issue", "10.1.2.3", "--ip", "::1", "--dns", "alt.example"])
        .ok();
    assert!(!ran.stdout.contains("created a new CA"), "{ran}");
    s.verify(
        "10.1.2.3",
        &["-purpose", "sslserver", "-verify_ip", "10.1.2.3"],
    )
    .ok();
    s.verify("10.1.2.3", &["-verify_ip", "::1"]).ok();
    s.verify("10.1.2.3", &["-verify_hostname", "alt.example"])
        .ok();
}

#[test]
fn server_and_client_profiles_restrict_the_purpose() {
    let s = Scratch::new();
    s.minica(&["issue", "srv", "--server"]).ok();
    s.minica(&["issue", "cli", "--client"]).ok();
    s.verify("srv", &["-purpose", "sslserver", "-verify_hostname", "srv"])
        .ok();
    let ran = s.verify("srv", &["-purpose", "sslclient"]);
    assert_ne!(
        ran.code,
        Some(0),
        "a --server leaf must not verify as a client:\n{ran}"
    );
    s.verify("cli", &["-purpose", "sslclient"]).ok();
    let ran = s.verify("cli", &["-purpose", "sslserver"]);
    assert_ne!(
        ran.code,
        Some(0),
        "a --client leaf must not verify as a server:\n{ran}"
    );
}

#[test]
fn ca_certificates_have_path_lengths_and_key_usage() {
    let s = Scratch::new();
    let ran = s.minica(&["init", "--trust-domain", "corp.test"]).ok();
    assert!(
        ran.stdout
            .contains(s.home.file_name().unwrap().to_str().unwrap()),
        "{ran}"
    );
    let root = s.home.join("root.pem");
    let int = s.home.join("intermediate.pem");
    let text = |p: &std::path::Path| {
        s.openssl(&["x509", "-in", p.to_str().unwrap(), "-noout", "-text"])
            .ok()
            .stdout
    };
    let (root_text, int_text) = (text(&root), text(&int));
    assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
    assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
    for t in [&root_text, &int_text] {
        assert!(t.contains("X509v3 Basic Constraints: critical"), "{t}");
        assert!(t.contains("X509v3 Key Usage: critical"), "{t}");
        assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
        assert!(t.contains("X509v3 Subject Key Identifier"), "{t}");
    }
    assert!(
        int_text.contains("X509v3 Authority Key Identifier"),
        "{int_text}"
    );
    s.openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        int.to_str().unwrap(),
    ])
    .ok();
    // The trust domain reaches the leaves.
    s.minica(&["issue", "svc"]).ok();
    let leaf = s
        .openssl(&[
            "x509",
            "-in",
            "svc/cert.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ])
        .ok();
    assert!(leaf.stdout.contains("spiffe://corp.test/svc"), "{leaf}");
    // An existing CA is never overwritten.
    let before = std::fs::read(&root).unwrap();
    let ran = s.minica(&["init"]).code(2);
    assert!(ran.stderr.contains("already exists"), "{ran}");
    assert_eq!(std::fs::read(&root).unwrap(), before);
}

#[test]
fn every_key_type_issues_and_verifies() {
    let s = Scratch::new();
    // An RSA CA signs leaves of every type (RSA CA keys go through ring too).
    s.minica(&["init", "--key-type", "rsa-2048"]).ok();
    for kt in [
        "ecdsa-p256",
        "ecdsa-p384",
        "ed25519",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
    ] {
        let name = format!("k-{kt}");
        s.minica(&["issue", &name, "--key-type", kt]).ok();
        s.verify(&name, &["-purpose", "sslserver", "-verify_hostname", &name])
            .ok();
        let text = s
            .openssl(&[
                "x509",
                "-in",
                &format!("{name}/cert.pem"),
                "-noout",
                "-text",
            ])
            .ok()
            .stdout;
        assert_eq!(
            text.contains("Key Encipherment"),
            kt.starts_with("rsa"),
            "{kt}: {text}"
        );
        // The key matches the certificate.
        let key = s
            .openssl(&["pkey", "-in", &format!("{name}/key.pem"), "-pubout"])
            .ok()
            .stdout;
        let cert = s
            .openssl(&[
                "x509",
                "-in",
                &format!("{name}/cert.pem"),
                "-noout",
                "-pubkey",
            ])
            .ok()
            .stdout;
        assert_eq!(key, cert, "{kt}");
    }
    // A P-384 CA, for the other path through ring.
    let t = Scratch::new();
    t.minica(&["init", "--key-type", "ecdsa-p384"]).ok();
    t.minica(&["issue", "e", "--key-type", "ed25519"]).ok();
    t.verify("e", &["-purpose", "sslclient"]).ok();
}

#[test]
fn csr_from_openssl_req_is_signed_with_only_its_key_and_sans() {
    let s = Scratch::new();
    s.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "own.key",
        "-out",
        "req.pem",
        "-subj",
        "/CN=ignored/O=Evil",
        "-addext",
        "subjectAltName=DNS:csr.example,IP:192.0.2.7",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ])
    .ok();
    let ran = s
        .minica(&["issue", "from-csr", "--csr", "req.pem", "--server"])
        .ok();
    assert!(!ran.stdout.contains("key.pem"), "{ran}");
    assert!(!s.path("from-csr/key.pem").exists());
    s.verify(
        "from-csr",
        &["-purpose", "sslserver", "-verify_hostname", "csr.example"],
    )
    .ok();
    s.verify("from-csr", &["-verify_ip", "192.0.2.7"]).ok();
    let text = s
        .openssl(&["x509", "-in", "from-csr/cert.pem", "-noout", "-text"])
        .ok()
        .stdout;
    assert!(text.contains("Subject: CN = from-csr"), "{text}");
    assert!(
        !text.contains("Certificate Sign") && !text.contains("Evil"),
        "{text}"
    );
    let key = s
        .openssl(&["pkey", "-in", "own.key", "-pubout"])
        .ok()
        .stdout;
    let cert = s
        .openssl(&["x509", "-in", "from-csr/cert.pem", "-noout", "-pubkey"])
        .ok()
        .stdout;
    assert_eq!(key, cert);
}
