//! Certificate names (`NAME`) and subject alternative names.
//!
//! A NAME is a DNS name (letters, digits, `-`, `.`) or an IP address. It is
//! also used as the default output directory, so anything that could walk
//! out of it (`/`, `..`) or confuse a shell (spaces, control characters) is
//! refused.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{Error, NameError};

/// A validated certificate NAME.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The IP address, when the name is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// The SAN this name becomes: an IP SAN for an address, else a DNS SAN.
    pub fn san(&self) -> San {
        match self.ip() {
            Some(ip) => San::Ip(ip),
            None => San::Dns(self.0.clone()),
        }
    }
}

impl FromStr for Name {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.parse::<IpAddr>().is_ok() {
            return Ok(Name(s.to_string()));
        }
        check_dns_name(s, false).map_err(|reason| Error::InvalidName {
            name: s.to_string(),
            reason,
        })?;
        Ok(Name(s.to_string()))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a DNS name: labels of letters, digits and `-`, joined by `.`.
/// With `wildcard`, a leading `*.` label is allowed.
pub(crate) fn check_dns_name(s: &str, wildcard: bool) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > 253 {
        return Err(NameError::TooLong);
    }
    let body = match s.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => s,
    };
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(NameError::BadCharacter);
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen);
        }
    }
    Ok(())
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// A URI, e.g. a SPIFFE ID.
    Uri(String),
}

impl San {
    /// A `--dns` value: a DNS name, optionally starting with `*.`.
    pub fn dns(value: &str) -> Result<Self, Error> {
        check_dns_name(value, true).map_err(|reason| Error::InvalidSan {
            arg: "--dns",
            value: value.to_string(),
            reason: name_reason(reason),
        })?;
        Ok(San::Dns(value.to_string()))
    }

    /// An `--ip` value.
    pub fn ip(value: &str) -> Result<Self, Error> {
        value.parse().map(San::Ip).map_err(|_| Error::InvalidSan {
            arg: "--ip",
            value: value.to_string(),
            reason: "not an IPv4 or IPv6 address",
        })
    }

    /// A `--uri` value: `scheme:rest`, printable ASCII without spaces.
    pub fn uri(value: &str) -> Result<Self, Error> {
        let bad = |reason| Error::InvalidSan {
            arg: "--uri",
            value: value.to_string(),
            reason,
        };
        let (scheme, rest) = value
            .split_once(':')
            .ok_or_else(|| bad("a URI needs a scheme, e.g. spiffe://td/name"))?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok || rest.is_empty() {
            return Err(bad(
                "a URI needs a scheme and a body, e.g. spiffe://td/name",
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("a URI may hold only printable ASCII without spaces"));
        }
        Ok(San::Uri(value.to_string()))
    }

    /// The kind as a word: `dns`, `ip` or `uri`.
    pub fn kind(&self) -> &'static str {
        match self {
            San::Dns(_) => "dns",
            San::Ip(_) => "ip",
            San::Uri(_) => "uri",
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, Error> {
        let bad = |value: &str| Error::InvalidSan {
            arg: "SAN",
            value: value.to_string(),
            reason: "not encodable as IA5String",
        };
        Ok(match self {
            San::Dns(d) => rcgen::SanType::DnsName(d.clone().try_into().map_err(|_| bad(d))?),
            San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            San::Uri(u) => rcgen::SanType::URI(u.clone().try_into().map_err(|_| bad(u))?),
        })
    }
}

fn name_reason(reason: NameError) -> &'static str {
    match reason {
        NameError::Empty => "it is empty",
        NameError::TooLong => "longer than 253 characters",
        NameError::BadCharacter => "only letters, digits, '-' and '.' are allowed",
        NameError::EmptyLabel => "empty label ('..' or a leading or trailing '.')",
        NameError::LabelTooLong => "a label is longer than 63 characters",
        NameError::Hyphen => "a label may not start or end with '-'",
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
            San::Uri(v) => write!(f, "URI:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_names_and_ips() {
        for ok in ["svc-a", "a.b.example", "x1", "127.0.0.1", "::1", "A-b.C"] {
            ok.parse::<Name>().unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(
            "10.0.0.1".parse::<Name>().unwrap().san(),
            San::Ip([10, 0, 0, 1].into())
        );
        assert_eq!("svc".parse::<Name>().unwrap().san(), San::Dns("svc".into()));
    }

    #[test]
    fn refuses_names_that_could_escape_or_confuse() {
        for bad in [
            "", "../x", "..", ".", "a/b", "a b", "a\nb", "a..b", ".a", "a.", "-a", "a_b", "*.a",
            "a\u{0}b", "é",
        ] {
            let err = bad.parse::<Name>().unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
        }
        assert!("a".repeat(64).parse::<Name>().is_err());
    }

    #[test]
    fn san_arguments_are_checked() {
        assert_eq!(San::dns("*.svc").unwrap(), San::Dns("*.svc".into()));
        assert!(San::dns("a b").is_err());
        assert!(San::ip("300.1.1.1").is_err());
        assert!(San::uri("spiffe://td/x").is_ok());
        assert!(San::uri("no-scheme").is_err());
        assert!(San::uri("http://a b").is_err());
        let err = San::ip("nope").unwrap_err().to_string();
        assert!(err.contains("--ip") && err.contains("nope"), "{err}");
    }
}
