//! `minica serve`: the online CA (see the `minica-server` crate).

use anyhow::{bail, Context as _};
use minica_ca::Ca;
use minica_server::ServeOptions;

use crate::args::ServeArgs;
use crate::commands::{Globals, StoreChoice};
use crate::exit::ExitStatus;

pub(crate) fn run(globals: &Globals, args: &ServeArgs) -> anyhow::Result<ExitStatus> {
    let (listen, host) = minica_server::parse_listen(&args.listen).context("--listen")?;
    let mut options = ServeOptions::new(listen, host);
    options.admin = args.admin;
    if args.cert_valid < std::time::Duration::from_secs(2) {
        bail!("--cert-valid: at least 2s (the server renews its certificate at two thirds of it)");
    }
    options.server_cert_validity = args.cert_valid;
    let ca = match &globals.store {
        StoreChoice::Postgres(_) => globals.open_ca()?,
        StoreChoice::Embedded => {
            let home = &globals.home;
            if !home.has_ca() {
                return Err(minica_ca::Error::NoCa {
                    home: home.dir().to_path_buf(),
                }
                .into());
            }
            let sock = home.serve_socket_path();
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                bail!(
                    "another `minica serve` is already running on the CA home {} (socket {}); \
                     to run several servers, share a PostgreSQL ledger (--store postgres://...)",
                    home.dir().display(),
                    sock.display()
                );
            }
            options.store_socket = Some(sock);
            Ca::open(home)?
        }
    };
    minica_server::run(ca, options, |started| {
        // Not `outln!`: a closed stdout must not stop a running server.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "minica serve: listening on {}", started.url);
        for fp in &started.root_fingerprints {
            let _ = writeln!(out, "root fingerprint: {fp}");
        }
        if let Some(admin) = started.admin {
            let _ = writeln!(out, "admin: http://{admin}/metrics");
        }
        if let Some(sock) = &started.socket {
            let _ = writeln!(out, "ledger socket: {}", sock.display());
        }
        let _ = out.flush();
    })?;
    Ok(ExitStatus::Success)
}
