//! `minica`: a private CA for mutual TLS. See `minica --help`.
//!
//! This file is deliberately thin: parse arguments, run the command, print
//! any error with its full context chain, map the outcome to an exit code.

mod args;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::ExitStatus;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2 (0 for --help/--version).
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            let chain = minica_pki::report::error_chain(err.chain());
            eprintln!("minica: error: {chain}");
            ExitStatus::Error.into()
        }
    }
}
