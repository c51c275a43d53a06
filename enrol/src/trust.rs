//! What the client trusts before it has a bundle: the CA's URL, and either a
//! bundle file or the SHA-256 fingerprint of a root (what `minica serve`
//! prints at start).

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The SHA-256 of a root certificate's DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate.
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// `sha256:` and lowercase hex, no separators.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts `sha256:HEX`, `SHA256:HEX`, `SHA-256:HEX`, plain hex, and
    /// hex with `:` separators (as `openssl x509 -fingerprint` and
    /// `minica inspect` print it), in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason| Error::Fingerprint {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let hex_part = ["sha256:", "sha-256:", "sha256=", "sha256 fingerprint="]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
        if digits.is_empty() {
            return Err(bad("empty"));
        }
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("not hexadecimal"));
        }
        if hex_part.contains(':') {
            // Separated form: every group is exactly two digits.
            if hex_part.split(':').any(|g| g.len() != 2) {
                return Err(bad("`:` must separate pairs of hex digits"));
            }
        }
        if digits.len() != 64 {
            return Err(bad("wrong length"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| bad("not hexadecimal"))?;
        Ok(Fingerprint(out))
    }
}

/// The trust a client starts with.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The roots of a bundle file (`--ca-bundle FILE`).
    Bundle(Vec<CertificateDer<'static>>),
    /// A pinned root (`--root-fingerprint`): the client fetches the bundle,
    /// keeps the root with this fingerprint, and verifies the server with it.
    Fingerprint(Fingerprint),
}

/// The base URL of a `minica serve`: `https://HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaUrl {
    text: String,
    host: String,
    port: u16,
    prefix: String,
}

impl CaUrl {
    /// The host (DNS name or IP address, without IPv6 brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 when the URL gives none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS server name: the host, as an IP address or a DNS name.
    pub fn server_name(&self) -> Result<ServerName<'static>, Error> {
        ServerName::try_from(self.host.clone()).map_err(|_| Error::Url {
            url: self.text.clone(),
            reason: "the host is neither a DNS name nor an IP address",
        })
    }

    /// The path to request for an API path, e.g. `/v1/enroll`.
    pub fn path(&self, api_path: &str) -> String {
        format!("{}{api_path}", self.prefix)
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for CaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CaUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason| Error::Url {
            url: s.to_string(),
            reason,
        };
        let uri: hyper::Uri = s.trim().parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => {}
            Some(_) => return Err(bad("only https:// is supported")),
            None => return Err(bad("missing https://")),
        }
        let host = uri.host().ok_or_else(|| bad("missing host"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        let url = CaUrl {
            text: s.trim().trim_end_matches('/').to_string(),
            host,
            port: uri.port_u16().unwrap_or(443),
            prefix,
        };
        url.server_name()?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn fingerprints_in_every_usual_form() {
        let want: Fingerprint = HEX.parse().unwrap();
        let colons = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        for form in [
            format!("sha256:{HEX}"),
            format!("SHA256:{}", HEX.to_uppercase()),
            format!("SHA-256:{colons}"),
            colons.clone(),
            format!("  {HEX}\n"),
            format!("sha256:{colons}"),
        ] {
            assert_eq!(form.parse::<Fingerprint>().unwrap(), want, "{form}");
        }
        assert_eq!(want.to_string(), format!("sha256:{HEX}"));
        assert_eq!(want.to_string().parse::<Fingerprint>().unwrap(), want);
    }

    #[test]
    fn bad_fingerprints_say_why() {
        for (input, why) in [
            ("", "empty"),
            ("sha256:", "empty"),
            (&HEX[..62], "wrong length"),
            ("zz", "not hexadecimal"),
            ("sha1:0011", "not hexadecimal"),
            ("001:12", "pairs"),
        ] {
            let err = input.parse::<Fingerprint>().unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn ca_urls() {
        let u: CaUrl = "https://127.0.0.1:8443".parse().unwrap();
        assert_eq!((u.host(), u.port()), ("127.0.0.1", 8443));
        assert_eq!(u.path("/v1/enroll"), "/v1/enroll");
        assert!(matches!(u.server_name().unwrap(), ServerName::IpAddress(_)));
        let u: CaUrl = "https://ca.example/minica/".parse().unwrap();
        assert_eq!((u.host(), u.port()), ("ca.example", 443));
        assert_eq!(u.path("/v1/bundle"), "/minica/v1/bundle");
        assert_eq!(u.to_string(), "https://ca.example/minica");
        let u: CaUrl = "https://[::1]:9000".parse().unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.authority(), "[::1]:9000");
        for (bad, why) in [
            ("http://127.0.0.1:8443", "only https"),
            ("127.0.0.1:8443", "https"),
            ("https://", "URL"),
            ("https://h/x?y=1", "query"),
            ("not a url", "URL"),
        ] {
            let err = bad.parse::<CaUrl>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
