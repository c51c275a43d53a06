//! How the binaries print an error: the message and each cause, joined by
//! `: `, as anyhow's `{:#}` does, but without repeating a cause whose text
//! the message already carries (many of our errors name their cause in
//! their own message and also expose it as `source()`).

use std::error::Error;

/// The error chain as one line, each cause once.
pub fn error_chain<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for err in chain {
        let text = err.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error, bool);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            if self.1 {
                write!(f, "cannot connect: {}", self.0)
            } else {
                write!(f, "cannot connect")
            }
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn chain<'a>(e: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
        std::iter::successors(Some(e), |&e| e.source()).collect()
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::other("connection refused");
        let repeated = Outer(io(), true);
        assert_eq!(
            error_chain(chain(&repeated)),
            "cannot connect: connection refused"
        );
        let separate = Outer(io(), false);
        assert_eq!(
            error_chain(chain(&separate)),
            "cannot connect: connection refused"
        );
    }
}
