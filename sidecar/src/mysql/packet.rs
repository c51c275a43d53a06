//! MySQL packet framing: a 4-byte header (payload length, 3 bytes little
//! endian; sequence id, 1 byte) then the payload. Pure functions over byte
//! slices; no I/O.

use super::ProtocolError;

/// Length of a packet header.
pub const HEADER_LEN: usize = 4;

/// The largest payload one packet can carry; a payload of exactly this
/// length means "continued in the next packet" (a multi-packet message).
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// The largest packet payload we accept while the connection is being set
/// up (greeting, handshake response, authentication exchange). A handshake
/// response with connection attributes stays under 64 KiB and authentication
/// data (RSA keys, GSSAPI tokens) under a few KiB; anything bigger is refused
/// rather than buffered, so a peer cannot make us allocate from a length it
/// chose.
pub const MAX_HANDSHAKE_PAYLOAD: usize = 256 * 1024;

/// First payload byte of an OK packet.
pub const OK: u8 = 0x00;
/// First payload byte of an ERR packet.
pub const ERR: u8 = 0xFF;

/// A decoded packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length.
    pub len: usize,
    /// Sequence id.
    pub seq: u8,
}

impl Header {
    /// Decodes a header.
    pub fn decode(bytes: [u8; HEADER_LEN]) -> Header {
        Header {
            len: usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16,
            seq: bytes[3],
        }
    }

    /// Decodes a header and checks its length against the handshake cap.
    pub fn decode_bounded(bytes: [u8; HEADER_LEN]) -> Result<Header, ProtocolError> {
        let h = Header::decode(bytes);
        if h.len > MAX_HANDSHAKE_PAYLOAD {
            return Err(ProtocolError::Oversized { len: h.len });
        }
        Ok(h)
    }
}

/// Encodes one packet (header + payload). The payload must fit in one
/// packet (at most [`MAX_PAYLOAD`] - 1 bytes); longer payloads are refused.
pub fn encode(seq: u8, payload: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if payload.len() >= MAX_PAYLOAD {
        return Err(ProtocolError::Oversized { len: payload.len() });
    }
    let len = payload.len();
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    // The casts keep the low byte of each shifted value on purpose.
    out.extend_from_slice(&[
        (len & 0xFF) as u8,
        (len >> 8 & 0xFF) as u8,
        (len >> 16 & 0xFF) as u8,
        seq,
    ]);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The payload of an ERR packet (protocol 4.1): code, `#`, SQL state (five
/// characters), message.
pub fn err_payload(code: u16, sql_state: &[u8; 5], message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + message.len());
    out.push(ERR);
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    out.extend_from_slice(sql_state);
    out.extend_from_slice(message.as_bytes());
    out
}

/// The error code and message of an ERR packet payload, for logs.
pub fn describe_err(payload: &[u8]) -> Option<(u16, String)> {
    if payload.first() != Some(&ERR) || payload.len() < 3 {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let mut text = &payload[3..];
    if text.first() == Some(&b'#') && text.len() >= 6 {
        text = &text[6..];
    }
    Some((code, String::from_utf8_lossy(text).into_owned()))
}

/// Which way a relayed packet goes, for sequence-number rewriting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// The server leg counts one more than the client leg (outbound: we
    /// inserted an SSLRequest the client never sent).
    ServerAhead,
    /// The server leg counts one less than the client leg (inbound: the
    /// client sent an SSLRequest the server never sees).
    ServerBehind,
}

impl Shift {
    /// The sequence id on the server leg of a packet the client sent.
    pub fn to_server(self, seq: u8) -> u8 {
        match self {
            Shift::ServerAhead => seq.wrapping_add(1),
            Shift::ServerBehind => seq.wrapping_sub(1),
        }
    }

    /// The sequence id on the client leg of a packet the server sent.
    pub fn to_client(self, seq: u8) -> u8 {
        match self {
            Shift::ServerAhead => seq.wrapping_sub(1),
            Shift::ServerBehind => seq.wrapping_add(1),
        }
    }
}

/// What [`rewrite_frames`] found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Bytes at the start of the buffer that are whole packets, rewritten,
    /// ready to forward.
    pub ready: usize,
    /// The client started the command phase: a packet with sequence id 0
    /// begins at `ready`. From there on everything passes unchanged.
    pub command_phase: bool,
}

/// Rewrites, in place, the sequence ids of the whole packets at the start
/// of `buf`, with `map`. With `stop_at_command` (the client's direction), a
/// packet header with sequence id 0 ends the authentication phase: it and
/// everything after it are left as they are. A header announcing more than
/// [`MAX_HANDSHAKE_PAYLOAD`] is an error. A partial packet at the end is left
/// for the next call.
pub fn rewrite_frames(
    buf: &mut [u8],
    map: impl Fn(u8) -> u8,
    stop_at_command: bool,
) -> Result<Rewritten, ProtocolError> {
    let mut at = 0;
    while buf.len() - at >= HEADER_LEN {
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&buf[at..at + HEADER_LEN]);
        let h = Header::decode(head);
        if stop_at_command && h.seq == 0 {
            return Ok(Rewritten {
                ready: at,
                command_phase: true,
            });
        }
        if h.len > MAX_HANDSHAKE_PAYLOAD {
            return Err(ProtocolError::Oversized { len: h.len });
        }
        let end = at + HEADER_LEN + h.len;
        if end > buf.len() {
            break;
        }
        buf[at + 3] = map(h.seq);
        at = end;
    }
    Ok(Rewritten {
        ready: at,
        command_phase: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let p = encode(7, &[1, 2, 3]).unwrap();
        assert_eq!(p, [3, 0, 0, 7, 1, 2, 3]);
        let h = Header::decode([p[0], p[1], p[2], p[3]]);
        assert_eq!(h, Header { len: 3, seq: 7 });
        let big = Header::decode([0x01, 0x02, 0x03, 0]);
        assert_eq!(big.len, 0x030201);
    }

    #[test]
    fn oversized_headers_are_refused() {
        assert_eq!(
            Header::decode_bounded([0xFF, 0xFF, 0xFF, 0]),
            Err(ProtocolError::Oversized { len: MAX_PAYLOAD })
        );
        assert!(Header::decode_bounded([0, 0, 4, 0]).is_ok()); // 256 KiB
        assert!(Header::decode_bounded([1, 0, 4, 0]).is_err());
        assert!(encode(0, &vec![0; MAX_PAYLOAD]).is_err());
    }

    #[test]
    fn err_packets_encode_and_describe() {
        let p = err_payload(1045, b"28000", "Access denied");
        assert_eq!(
            &p[..9],
            &[0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0']
        );
        assert_eq!(describe_err(&p), Some((1045, "Access denied".into())));
        // Pre-4.1 ERR (no SQL state), as a server sends for "host blocked".
        let mut old = vec![0xFF, 0x69, 0x04];
        old.extend_from_slice(b"Host is blocked");
        assert_eq!(describe_err(&old), Some((1129, "Host is blocked".into())));
        assert_eq!(describe_err(&[0x00]), None);
    }

    #[test]
    fn shift_wraps_both_ways() {
        assert_eq!(Shift::ServerAhead.to_server(1), 2);
        assert_eq!(Shift::ServerAhead.to_client(2), 1);
        assert_eq!(Shift::ServerBehind.to_server(2), 1);
        assert_eq!(Shift::ServerBehind.to_client(1), 2);
        assert_eq!(Shift::ServerAhead.to_server(255), 0);
        assert_eq!(Shift::ServerBehind.to_server(0), 255);
    }

    #[test]
    fn rewrites_whole_frames_and_keeps_a_partial_one() {
        let mut buf = encode(2, b"abc").unwrap();
        buf.extend(encode(4, b"").unwrap());
        buf.extend_from_slice(&[9, 0, 0, 6, b'x']); // partial
        let r = rewrite_frames(&mut buf, |s| s + 1, true).unwrap();
        assert_eq!(r.ready, 7 + 4);
        assert!(!r.command_phase);
        assert_eq!(buf[3], 3);
        assert_eq!(buf[10], 5);
        assert_eq!(buf[14], 6, "the partial frame is untouched");
    }

    #[test]
    fn a_sequence_zero_header_starts_the_command_phase() {
        let mut buf = encode(3, b"auth").unwrap();
        buf.extend(encode(0, &[0x03, b'S']).unwrap()); // COM_QUERY
        buf.extend(encode(0, &[0x01]).unwrap());
        let r = rewrite_frames(&mut buf, |s| s + 1, true).unwrap();
        assert_eq!(
            r,
            Rewritten {
                ready: 8,
                command_phase: true
            }
        );
        assert_eq!(buf[3], 4);
        assert_eq!(buf[11], 0, "the command is not rewritten");
        // The server's direction never stops at sequence 0.
        let mut buf = encode(0, b"x").unwrap();
        let r = rewrite_frames(&mut buf, |s| s.wrapping_add(1), false).unwrap();
        assert_eq!(
            r,
            Rewritten {
                ready: 5,
                command_phase: false
            }
        );
        assert_eq!(buf[3], 1);
    }

    #[test]
    fn an_oversized_frame_in_the_auth_phase_is_an_error() {
        let mut buf = vec![0xFF, 0xFF, 0xFF, 2, 0, 0];
        assert!(rewrite_frames(&mut buf, |s| s, true).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap deterministic fuzz loop (xorshift), no extra dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = usize::try_from(next() % 64).unwrap();
            let mut buf: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            if let Ok(r) = rewrite_frames(&mut buf, |s| s.wrapping_add(1), true) {
                assert!(r.ready <= buf.len());
            }
            let _ = describe_err(&buf);
            let _ = crate::mysql::handshake::Greeting::parse(&buf);
            let _ = crate::mysql::handshake::Response::parse(&buf);
        }
    }
}
