//! `minica enroll NAME --ca-url URL --token T (--ca-bundle FILE |
//! --root-fingerprint SHA256)`: get a certificate from a `minica serve`.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use minica_enrol::identity::{check_absent, write_identity, IdentityFiles, Overwrite};
use minica_enrol::trust::Trust;
use minica_enrol::{EnrollOptions, Obtained};

use crate::args::EnrollArgs;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(args: &EnrollArgs) -> anyhow::Result<ExitStatus> {
    // Every local input is checked before the network is used.
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.name.as_str()));
    minica_enrol::identity::check_out_dir(&out).context("--out")?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        check_absent(&IdentityFiles::in_dir(&out))?;
        Overwrite::Refuse
    };
    let trust = match (&args.ca_bundle, args.root_fingerprint) {
        (Some(path), _) => Trust::Bundle(minica_pki::pem::load_certs(path).context("--ca-bundle")?),
        (None, Some(fp)) => Trust::Fingerprint(fp),
        (None, None) => bail!("give --ca-bundle FILE or --root-fingerprint SHA256"),
    };
    let token = args.token.trim();
    if token.is_empty() {
        bail!("--token: empty");
    }
    let options = EnrollOptions {
        url: args.ca_url.clone(),
        trust,
        token: token.to_string(),
        name: args.name.as_str().to_string(),
        key_type: args.key_type.unwrap_or_default(),
    };
    let obtained = block_on(minica_enrol::enroll(&options))?
        .with_context(|| format!("enroll {}", args.name))?;
    let Obtained { issued, key_pem } = obtained;
    write_identity(
        &out,
        &issued,
        key_pem.as_deref().map(String::as_str),
        overwrite,
    )
    .with_context(|| format!("enroll {}: writing {}", args.name, out.display()))?;
    outln!(
        "enrolled {} (serial {}, {}, until {}) from {}",
        args.name,
        issued.leaf.serial,
        options.key_type,
        until(issued.leaf.not_after),
        args.ca_url
    );
    let files = IdentityFiles::in_dir(&out);
    for path in [&files.cert, &files.chain, &files.key, &files.ca] {
        outln!("  {}", path.display());
    }
    Ok(ExitStatus::Success)
}

/// Runs one future on a current-thread runtime (the CLI is synchronous).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(f))
}

/// A unix time as RFC 3339.
pub(crate) fn until(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command};

    #[test]
    fn enroll_arguments() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv);
        let fp = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let cli = parse(&[
            "minica",
            "enroll",
            "svc",
            "--ca-url",
            "https://127.0.0.1:8443",
            "--token",
            "t",
            "--root-fingerprint",
            fp,
        ])
        .unwrap();
        let Command::Enroll(e) = cli.command else {
            panic!("enroll expected")
        };
        assert_eq!(e.ca_url.port(), 8443);
        assert!(e.root_fingerprint.is_some() && e.ca_bundle.is_none());
        let base = [
            "minica",
            "enroll",
            "svc",
            "--ca-url",
            "https://127.0.0.1:8443",
            "--token",
            "t",
        ];
        for extra in [
            &[][..],
            &["--ca-bundle", "b.pem", "--root-fingerprint", fp],
            &["--root-fingerprint", "abc"],
            &["--ca-bundle", "b.pem", "--key-type", "dsa"],
        ] {
            let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
            let err = parse(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
        let err = parse(&[
            "minica",
            "enroll",
            "svc",
            "--ca-url",
            "http://127.0.0.1:8443",
            "--token",
            "t",
            "--ca-bundle",
            "b.pem",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("only https"), "{err}");
    }

    #[test]
    fn online_renew_arguments() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv);
        let cli = parse(&[
            "minica",
            "renew",
            "--ca-url",
            "https://ca:8443",
            "--identity",
            "d",
            "--reuse-key",
        ])
        .unwrap();
        let Command::Renew(r) = cli.command else {
            panic!("renew expected")
        };
        assert!(r.ca_url.is_some() && r.reuse_key && r.name.is_none());
        for bad in [
            &["minica", "renew", "--ca-url", "https://ca:8443"][..],
            &["minica", "renew", "--identity", "d"],
            &[
                "minica",
                "renew",
                "svc",
                "--ca-url",
                "https://ca:8443",
                "--identity",
                "d",
            ],
            &[
                "minica",
                "renew",
                "--ca-url",
                "https://ca:8443",
                "--identity",
                "d",
                "--valid",
                "1d",
            ],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
