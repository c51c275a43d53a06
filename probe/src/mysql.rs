//! Just enough of the MySQL client/server protocol for `--starttls mysql`:
//! read the server greeting (HandshakeV10), answer with an SSLRequest, and
//! recognise a greeting among bytes that are not TLS.

/// CLIENT_LONG_PASSWORD.
const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
/// CLIENT_LONG_FLAG.
const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
/// CLIENT_PROTOCOL_41: the 4.1+ protocol (every server since 2004).
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
/// CLIENT_SSL: the server can switch to TLS; the client asks for it.
pub(crate) const CLIENT_SSL: u32 = 0x0000_0800;
/// CLIENT_SECURE_CONNECTION.
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
/// The largest greeting we read; real ones are about 100 bytes.
pub(crate) const MAX_GREETING: usize = 16 * 1024;
/// utf8mb4_general_ci, accepted by MySQL 5.5+ and MariaDB.
const CHARSET_UTF8MB4: u8 = 45;

/// What the server said first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Greeting {
    /// A HandshakeV10 packet.
    Handshake {
        /// The server version string (e.g. `11.4.2-MariaDB`).
        version: String,
        /// Capability flags (lower and upper 16 bits).
        capabilities: u32,
    },
    /// An ERR packet instead of a greeting (e.g. "Host is blocked").
    Error {
        /// The error code.
        code: u16,
        /// The message.
        message: String,
    },
}

impl Greeting {
    /// Whether the server offers TLS.
    pub(crate) fn offers_tls(&self) -> bool {
        matches!(self, Greeting::Handshake { capabilities, .. } if capabilities & CLIENT_SSL != 0)
    }
}

/// The 4-byte packet header: payload length and sequence id.
pub(crate) fn packet_header(h: [u8; 4]) -> (usize, u8) {
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    (len, h[3])
}

/// Parses the payload of the first packet the server sends.
pub(crate) fn parse_greeting(payload: &[u8]) -> Option<Greeting> {
    match payload.first()? {
        10 => {
            let rest = &payload[1..];
            let nul = rest.iter().position(|&b| b == 0)?;
            let version = std::str::from_utf8(&rest[..nul]).ok()?;
            if version.is_empty() || !version.chars().all(|c| c.is_ascii_graphic()) {
                return None;
            }
            // connection id (4), auth-plugin-data part 1 (8), filler (1)
            let after = rest.get(nul + 1 + 4 + 8 + 1..)?;
            let low = u32::from(u16::from_le_bytes([*after.first()?, *after.get(1)?]));
            // charset (1), status (2), capabilities upper 16 bits (2)
            let high = match (after.get(5), after.get(6)) {
                (Some(&a), Some(&b)) => u32::from(u16::from_le_bytes([a, b])),
                _ => 0,
            };
            Some(Greeting::Handshake {
                version: display_version(version),
                capabilities: low | high << 16,
            })
        }
        0xff => {
            let code = u16::from_le_bytes([*payload.get(1)?, *payload.get(2)?]);
            let mut msg = payload.get(3..)?;
            if msg.first() == Some(&b'#') {
                msg = msg.get(6..).unwrap_or_default();
            }
            Some(Greeting::Error {
                code,
                message: String::from_utf8_lossy(msg).into_owned(),
            })
        }
        _ => None,
    }
}

/// The server version when `bytes` (the first bytes a peer sent) begin
/// with a MySQL greeting packet.
pub(crate) fn greeting_version(bytes: &[u8]) -> Option<String> {
    let header: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let (len, seq) = packet_header(header);
    if seq != 0 || len == 0 || len > MAX_GREETING {
        return None;
    }
    let payload = &bytes[4..bytes.len().min(4 + len)];
    match parse_greeting_prefix(payload)? {
        Greeting::Handshake { version, .. } => Some(version),
        Greeting::Error { .. } => None,
    }
}

/// Like [`parse_greeting`], but only the protocol byte and the version are
/// needed (the bytes may be cut short).
fn parse_greeting_prefix(payload: &[u8]) -> Option<Greeting> {
    if let Some(g) = parse_greeting(payload) {
        return Some(g);
    }
    if payload.first() != Some(&10) {
        return None;
    }
    let rest = &payload[1..];
    let nul = rest.iter().position(|&b| b == 0)?;
    let version = std::str::from_utf8(&rest[..nul]).ok()?;
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_graphic())).then(|| {
        Greeting::Handshake {
            version: display_version(version),
            capabilities: 0,
        }
    })
}

/// The version as MariaDB's own client shows it: without the `5.5.5-`
/// prefix MariaDB puts in front for old MySQL clients.
fn display_version(version: &str) -> String {
    match version.strip_prefix("5.5.5-") {
        Some(rest) if rest.contains("MariaDB") => rest.to_string(),
        _ => version.to_string(),
    }
}

/// The SSLRequest packet (sequence id 1): the 32-byte head of a
/// HandshakeResponse41 with CLIENT_SSL, after which both sides speak TLS.
pub(crate) fn ssl_request(server_capabilities: u32) -> [u8; 36] {
    let wanted = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_SSL
        | CLIENT_SECURE_CONNECTION;
    let caps = (wanted & server_capabilities) | CLIENT_SSL | CLIENT_PROTOCOL_41;
    let mut packet = [0u8; 36];
    packet[..4].copy_from_slice(&[32, 0, 0, 1]);
    packet[4..8].copy_from_slice(&caps.to_le_bytes());
    packet[8..12].copy_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    packet[12] = CHARSET_UTF8MB4;
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MariaDB 11 greeting, as captured on the wire.
    fn greeting_bytes(version: &str, caps: u32) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(version.as_bytes());
        p.push(0);
        p.extend_from_slice(&7u32.to_le_bytes()); // connection id
        p.extend_from_slice(b"abcdefgh"); // scramble part 1
        p.push(0);
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(45); // charset
        p.extend_from_slice(&2u16.to_le_bytes()); // status
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let mut packet = vec![p.len() as u8, 0, 0, 0];
        packet.extend_from_slice(&p);
        packet
    }

    #[test]
    fn parses_a_greeting_and_its_tls_capability() {
        let bytes = greeting_bytes("11.4.2-MariaDB-log", 0x000a_fffe);
        let (len, seq) = packet_header(bytes[..4].try_into().unwrap());
        assert_eq!((len, seq), (bytes.len() - 4, 0));
        let g = parse_greeting(&bytes[4..]).unwrap();
        assert_eq!(
            g,
            Greeting::Handshake {
                version: "11.4.2-MariaDB-log".into(),
                capabilities: 0x000a_fffe
            }
        );
        assert!(g.offers_tls());
        let g = parse_greeting(&greeting_bytes("8.0.36", 0x0000_f7fe)[4..]).unwrap();
        assert!(!g.offers_tls());
    }

    #[test]
    fn recognises_a_greeting_among_non_tls_bytes() {
        let bytes = greeting_bytes("10.11.6-MariaDB", 0xf7fe);
        assert_eq!(greeting_version(&bytes).as_deref(), Some("10.11.6-MariaDB"));
        // Cut short after the version: still recognised.
        assert_eq!(
            greeting_version(&bytes[..25]).as_deref(),
            Some("10.11.6-MariaDB")
        );
        assert_eq!(
            greeting_version(&greeting_bytes("5.5.5-10.11.19-MariaDB-0+deb12u1", 0xfffe))
                .as_deref(),
            Some("10.11.19-MariaDB-0+deb12u1")
        );
        assert_eq!(
            greeting_version(&greeting_bytes("8.0.36", 0xfffe)).as_deref(),
            Some("8.0.36")
        );
        assert_eq!(greeting_version(b"HTTP/1.1 400 Bad Request\r\n"), None);
        assert_eq!(greeting_version(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(
            greeting_version(&[0x15, 0x03, 0x03, 0x00, 0x02, 2, 70]),
            None
        );
        assert_eq!(greeting_version(&[]), None);
    }

    #[test]
    fn parses_an_error_packet() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1129u16.to_le_bytes());
        p.extend_from_slice(b"#HY000Host '10.0.0.1' is blocked");
        assert_eq!(
            parse_greeting(&p),
            Some(Greeting::Error {
                code: 1129,
                message: "Host '10.0.0.1' is blocked".into()
            })
        );
        assert_eq!(parse_greeting(&[]), None);
        assert_eq!(parse_greeting(&[10, b'x']), None);
    }

    #[test]
    fn the_ssl_request_is_a_32_byte_packet_with_sequence_1_and_client_ssl() {
        let p = ssl_request(0xffff_ffff);
        assert_eq!(&p[..4], &[32, 0, 0, 1]);
        let caps = u32::from_le_bytes(p[4..8].try_into().unwrap());
        assert_ne!(caps & CLIENT_SSL, 0);
        assert_ne!(caps & CLIENT_PROTOCOL_41, 0);
        assert_eq!(p[12], CHARSET_UTF8MB4);
        assert!(p[13..].iter().all(|&b| b == 0));
    }
}
