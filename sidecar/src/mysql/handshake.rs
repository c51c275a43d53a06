//! The connection-phase messages the sidecar reads and edits: the server's
//! greeting (HandshakeV10) and the client's HandshakeResponse41 / SSLRequest.
//! Pure functions over payloads (no packet header); no I/O.

use super::ProtocolError;

/// `CLIENT_PROTOCOL_41`: 4.1 handshake response format (every client since
/// MySQL 4.1; the SSLRequest exists only in this format).
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
/// `CLIENT_SSL`: the client will switch to TLS / the server can.
pub const CLIENT_SSL: u32 = 0x0000_0800;

/// Protocol version byte of HandshakeV10.
const PROTOCOL_V10: u8 = 10;
/// An SSLRequest is the first 32 bytes of a HandshakeResponse41:
/// capabilities (4), max packet size (4), character set (1), filler (23).
pub const SSL_REQUEST_LEN: usize = 32;

/// What the sidecar needs from a server greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Offset in the payload of the lower two capability bytes.
    caps_offset: usize,
    /// Capability flags (lower and, when present, upper half).
    pub capabilities: u32,
    /// The server version string (e.g. `5.5.5-10.11.6-MariaDB`).
    pub server_version: String,
}

impl Greeting {
    /// Parses a HandshakeV10 payload. An ERR packet, another protocol
    /// version, a truncated greeting or a server without the 4.1 protocol
    /// are errors.
    pub fn parse(payload: &[u8]) -> Result<Greeting, ProtocolError> {
        match payload.first() {
            Some(&PROTOCOL_V10) => {}
            Some(&first) => return Err(ProtocolError::NotHandshakeV10 { first }),
            None => return Err(ProtocolError::Truncated { what: "greeting" }),
        }
        let rest = &payload[1..];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(ProtocolError::Truncated { what: "greeting" })?;
        let server_version = String::from_utf8_lossy(&rest[..nul]).into_owned();
        // version NUL, connection id (4), auth data part 1 (8), filler (1)
        let caps_offset = 1 + nul + 1 + 4 + 8 + 1;
        let lower = payload
            .get(caps_offset..caps_offset + 2)
            .ok_or(ProtocolError::Truncated { what: "greeting" })?;
        let mut capabilities = u32::from(u16::from_le_bytes([lower[0], lower[1]]));
        // character set (1), status flags (2), then the upper capabilities.
        if let Some(upper) = payload.get(caps_offset + 5..caps_offset + 7) {
            capabilities |= u32::from(u16::from_le_bytes([upper[0], upper[1]])) << 16;
        }
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::NoProtocol41);
        }
        Ok(Greeting {
            caps_offset,
            capabilities,
            server_version,
        })
    }

    /// Whether the server offers TLS.
    pub fn offers_tls(&self) -> bool {
        self.capabilities & CLIENT_SSL != 0
    }

    /// A copy of `payload` (the one this greeting was parsed from) with
    /// `CLIENT_SSL` set (`tls` true) or cleared; nothing else changes.
    pub fn with_tls(&self, payload: &[u8], tls: bool) -> Vec<u8> {
        let mut out = payload.to_vec();
        // CLIENT_SSL (0x0800) is bit 3 of the second lower capability byte.
        let byte = (CLIENT_SSL >> 8) as u8;
        if let Some(b) = out.get_mut(self.caps_offset + 1) {
            if tls {
                *b |= byte;
            } else {
                *b &= !byte;
            }
        }
        out
    }
}

/// The part of a HandshakeResponse41 (or SSLRequest) the sidecar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The client's capability flags.
    pub capabilities: u32,
    /// Whether this is an SSLRequest: exactly the 32-byte prefix with
    /// `CLIENT_SSL` set.
    pub ssl_request: bool,
}

impl Response {
    /// Parses a client's first packet. It must be in the 4.1 format (at
    /// least 32 bytes, `CLIENT_PROTOCOL_41`). A packet with `CLIENT_SSL`
    /// that is longer than an SSLRequest is a full response sent in
    /// plaintext after announcing TLS: refused.
    pub fn parse(payload: &[u8]) -> Result<Response, ProtocolError> {
        if payload.len() < SSL_REQUEST_LEN {
            return Err(ProtocolError::Truncated {
                what: "handshake response",
            });
        }
        let capabilities = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::NoProtocol41);
        }
        let tls = capabilities & CLIENT_SSL != 0;
        if tls && payload.len() != SSL_REQUEST_LEN {
            return Err(ProtocolError::PlaintextAfterSslFlag);
        }
        Ok(Response {
            capabilities,
            ssl_request: tls,
        })
    }
}

/// The SSLRequest a client with this handshake response would have sent:
/// its first 32 bytes with `CLIENT_SSL` set.
pub fn ssl_request_for(response: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut out = response
        .get(..SSL_REQUEST_LEN)
        .ok_or(ProtocolError::Truncated {
            what: "handshake response",
        })?
        .to_vec();
    set_client_tls(&mut out, true);
    Ok(out)
}

/// Sets (`tls` true) or clears `CLIENT_SSL` in a handshake response or
/// SSLRequest payload, in place.
pub fn set_client_tls(payload: &mut [u8], tls: bool) {
    let byte = (CLIENT_SSL >> 8) as u8;
    if let Some(b) = payload.get_mut(1) {
        if tls {
            *b |= byte;
        } else {
            *b &= !byte;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MariaDB 10.11 greeting as captured on the wire (payload only).
    pub(crate) fn mariadb_greeting(tls: bool) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        p.extend_from_slice(&42u32.to_le_bytes()); // connection id
        p.extend_from_slice(b"abcdefgh"); // scramble part 1
        p.push(0); // filler
        let caps: u32 = 0xA0FF_F7FE | if tls { CLIENT_SSL } else { 0 };
        let caps = if tls { caps } else { caps & !CLIENT_SSL };
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(45); // charset
        p.extend_from_slice(&2u16.to_le_bytes()); // status
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21); // auth data length
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&[0x1d, 0, 0, 0]); // MariaDB extended caps
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    pub(crate) fn response(caps: u32) -> Vec<u8> {
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(b"app\0");
        p.push(20);
        p.extend_from_slice(&[7; 20]);
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    const CLIENT_CAPS: u32 = 0x000A_A285; // 4.1, secure conn, plugin auth...

    #[test]
    fn parses_a_mariadb_greeting() {
        let g = Greeting::parse(&mariadb_greeting(true)).unwrap();
        assert_eq!(g.server_version, "5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert!(g.offers_tls());
        assert_eq!(g.capabilities & 0xFFFF_0000, 0xA0FF_0000);
        let g = Greeting::parse(&mariadb_greeting(false)).unwrap();
        assert!(!g.offers_tls());
    }

    #[test]
    fn toggles_only_the_ssl_flag_in_a_greeting() {
        let with = mariadb_greeting(true);
        let without = mariadb_greeting(false);
        let g = Greeting::parse(&with).unwrap();
        assert_eq!(g.with_tls(&with, false), without);
        assert_eq!(g.with_tls(&with, true), with);
        let g = Greeting::parse(&without).unwrap();
        assert_eq!(g.with_tls(&without, true), with);
    }

    #[test]
    fn refuses_bad_greetings() {
        let err = Greeting::parse(&[0xFF, 0x69, 0x04, b'H']).unwrap_err();
        assert_eq!(err, ProtocolError::NotHandshakeV10 { first: 0xFF });
        assert!(matches!(
            Greeting::parse(&[9, b'x', 0]),
            Err(ProtocolError::NotHandshakeV10 { first: 9 })
        ));
        let full = mariadb_greeting(true);
        for cut in [0, 1, 10, 33, 45, 46] {
            assert!(
                matches!(
                    Greeting::parse(&full[..cut]),
                    Err(ProtocolError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        // A version string without its NUL.
        assert!(Greeting::parse(&[10, b'5', b'.', b'5']).is_err());
        // A server without the 4.1 protocol.
        let mut old = full.clone();
        let g = Greeting::parse(&full).unwrap();
        old[g.caps_offset + 1] &= !((CLIENT_PROTOCOL_41 >> 8) as u8);
        assert_eq!(Greeting::parse(&old), Err(ProtocolError::NoProtocol41));
    }

    #[test]
    fn tells_an_ssl_request_from_a_full_response() {
        let full = response(CLIENT_CAPS);
        let r = Response::parse(&full).unwrap();
        assert!(!r.ssl_request);
        let ssl = ssl_request_for(&full).unwrap();
        assert_eq!(ssl.len(), SSL_REQUEST_LEN);
        assert_eq!(&ssl[4..], &full[4..32]);
        let r = Response::parse(&ssl).unwrap();
        assert!(r.ssl_request);
        assert_eq!(r.capabilities, CLIENT_CAPS | CLIENT_SSL);
    }

    #[test]
    fn refuses_bad_responses() {
        assert!(matches!(
            Response::parse(&[0; 31]),
            Err(ProtocolError::Truncated { .. })
        ));
        let old = response(CLIENT_CAPS & !CLIENT_PROTOCOL_41);
        assert_eq!(Response::parse(&old), Err(ProtocolError::NoProtocol41));
        let mut sneaky = response(CLIENT_CAPS);
        set_client_tls(&mut sneaky, true);
        assert_eq!(
            Response::parse(&sneaky),
            Err(ProtocolError::PlaintextAfterSslFlag)
        );
    }

    #[test]
    fn clears_and_sets_the_client_ssl_flag() {
        let mut p = response(CLIENT_CAPS | CLIENT_SSL);
        set_client_tls(&mut p, false);
        assert_eq!(p, response(CLIENT_CAPS));
        set_client_tls(&mut p, true);
        assert_eq!(p, response(CLIENT_CAPS | CLIENT_SSL));
        set_client_tls(&mut [], true); // no panic on empty input
    }
}
