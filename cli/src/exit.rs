//! The exit codes of every `minica` command.

use std::process::ExitCode;

/// How a command ended. Documented in `--help` (see [`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// 0: done.
    Success,
    /// 1: the command worked and the answer is "no" (e.g. verify: invalid).
    Negative,
    /// 2: usage, input or I/O error (clap's usage errors also exit 2).
    Error,
}

/// The `--help` text on exit codes.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  a negative answer (e.g. `verify`: the certificate is not valid)
  2  usage, input or I/O error (the message names the argument or file)
A panic (exit 101) is always a bug: please report it.";

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Negative => 1,
            ExitStatus::Error => 2,
        })
    }
}
