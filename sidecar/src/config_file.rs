//! The TOML file of `run --config` / `check --config`, as written (raw
//! strings); [`crate::settings`] turns it into typed settings.

use std::path::Path;

use serde::Deserialize;

use crate::error::Error;
use crate::settings::{Problem, Problems, RawGlobal, RawRoute, Source};

/// The top level of the file, before the routes are read one by one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    admin: Option<String>,
    log_format: Option<String>,
    #[serde(default)]
    route: Vec<toml::Value>,
}

/// Reads and parses a config file into raw settings. Every route is read on
/// its own so that an unknown key is reported with the route it is in.
pub fn load(path: &Path) -> Result<(RawGlobal, Vec<RawRoute>), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of a config file (see [`load`]).
pub fn parse(path: &Path, text: &str) -> Result<(RawGlobal, Vec<RawRoute>), Error> {
    let file: RawFile = toml::from_str(text).map_err(|source| Error::ConfigSyntax {
        path: path.to_path_buf(),
        source,
    })?;
    let source = Source::File(path.to_path_buf());
    let mut problems = Vec::new();
    let mut routes = Vec::new();
    for (i, value) in file.route.into_iter().enumerate() {
        let label = value
            .get("name")
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", i + 1));
        match RawRoute::deserialize(value) {
            Ok(route) => routes.push(route),
            Err(e) => problems.push(Problem::new(Some(label), unknown_key(&e), e.message())),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Settings(Problems::new(source, problems)));
    }
    Ok((
        RawGlobal {
            admin: file.admin,
            log_format: file.log_format,
            source,
        },
        routes,
    ))
}

/// The key named by a serde error ("unknown field `x`" / "invalid type ... for key `x`").
fn unknown_key(e: &toml::de::Error) -> String {
    let msg = e.message();
    msg.split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "route".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
admin = "127.0.0.1:9901"
log_format = "json"

[[route]]
name = "web-in"
direction = "inbound"
listen = "0.0.0.0:8443"
upstream = "127.0.0.1:8080"
identity = "/etc/minica/web"
crl = "/etc/minica/crl.pem"
allow = ["spiffe://minica.internal/api"]
protocol = "tcp"
proxy_protocol = "v2"
tls12 = false
handshake_timeout = "10s"
idle_timeout = "5m"
max_connections = 100
drain_timeout = "30s"
renew_from = "https://ca.internal:8443"
crl_from = "https://ca.internal:8443"

[[route]]
name = "api-out"
direction = "outbound"
listen = "127.0.0.1:9000"
upstream = "10.0.0.2:8443"
cert = "c.pem"
key = "k.pem"
ca = "ca.pem"
server_name = "api"
"#;

    #[test]
    fn parses_the_contract_example() {
        let (global, routes) = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(global.admin.as_deref(), Some("127.0.0.1:9901"));
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].max_connections, Some(100));
        assert_eq!(routes[1].server_name.as_deref(), Some("api"));
        assert_eq!(
            routes[0].renew_from.as_deref(),
            Some("https://ca.internal:8443")
        );
        assert!(routes[0].crl_from.is_some() && routes[1].renew_from.is_none());
        let err = parse(
            Path::new("s.toml"),
            &GOOD.replace("renew_from", "renew_form"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("renew_form"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_route_and_key() {
        let text = GOOD.replace("tls12 = false", "tls13 = true");
        let err = parse(Path::new("s.toml"), &text).unwrap_err().to_string();
        assert!(err.contains("s.toml"), "{err}");
        assert!(err.contains("web-in"), "{err}");
        assert!(err.contains("tls13"), "{err}");
    }

    #[test]
    fn unknown_top_level_key_and_bad_syntax_name_the_file() {
        let err = parse(Path::new("s.toml"), "bogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.toml") && err.contains("bogus"), "{err}");
        let err = parse(Path::new("s.toml"), "[[route]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.toml"), "{err}");
    }
}
