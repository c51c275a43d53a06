//! Writing command output to standard output.
//!
//! `println!` panics when stdout is a closed pipe (`minica list | head`).
//! These macros end the process quietly with success instead, as Unix tools
//! do: by the time anything is printed, the command's work (ledger commits,
//! file writes) is already done and durable.

use std::io::{self, Write};

/// Writes formatted text to stdout (see the module docs).
pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("minica: error: cannot write to standard output: {e}");
            std::process::exit(2);
        }
    }
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::output::write(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), true) };
}

/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), false) };
}

pub(crate) use {out, outln};
