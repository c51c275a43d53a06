//! `minica-sidecar`: the thin binary over the `minica_sidecar` library.

mod args;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use minica_sidecar::settings::{RawGlobal, RawRoute, Settings};
use minica_sidecar::{config_file, log, server};

use crate::args::{Cli, Command};

/// Usage, input or I/O error.
const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let chain = minica_pki::report::error_chain(e.chain());
            eprintln!("minica-sidecar: error: {chain}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inbound(a) => serve(a.into_raw()),
        Command::Outbound(a) => serve(a.into_raw()),
        Command::Run(c) => serve(config_file::load(&c.config)?),
        Command::Check(c) => {
            let (global, routes) = config_file::load(&c.config)?;
            let settings = Settings::resolve(global, routes)?;
            server::check(&settings)
                .with_context(|| format!("{}: invalid credentials", c.config.display()))?;
            println!(
                "{}: ok ({} route{})",
                c.config.display(),
                settings.routes.len(),
                if settings.routes.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve((global, routes): (RawGlobal, Vec<RawRoute>)) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(global, routes)?;
    log::init(settings.log_format);
    let prepared = server::prepare(&settings)?;
    server::run(prepared)?;
    Ok(ExitCode::SUCCESS)
}
