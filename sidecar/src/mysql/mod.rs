//! `--protocol mysql`: the MySQL/MariaDB connection phase around TLS.
//!
//! MySQL does not start TLS at the first byte. The server sends a greeting
//! (HandshakeV10) advertising `CLIENT_SSL`; a client that wants TLS answers
//! with an SSLRequest (the first 32 bytes of its handshake response, with
//! `CLIENT_SSL` set, sequence id 1), both sides run the TLS handshake on the
//! same TCP stream, and the client then sends its full handshake response
//! inside TLS with sequence id 2.
//!
//! - **outbound** (plaintext app → TLS server): the greeting is relayed
//!   without `CLIENT_SSL`; the app's handshake response (sequence 1) is kept,
//!   an SSLRequest built from it is sent to the server, TLS is established
//!   with our client certificate, and the response goes on inside TLS as
//!   sequence 2. The server leg is one ahead of the client leg.
//! - **inbound** (TLS client → plaintext server): the greeting is relayed
//!   with `CLIENT_SSL` set; the client must answer with an SSLRequest (a
//!   plaintext handshake response is refused with an ERR packet); after TLS
//!   its response (sequence 2) goes to the server as sequence 1 without
//!   `CLIENT_SSL`. The server leg is one behind.
//!
//! Until the client starts the command phase (a packet with sequence id 0),
//! every authentication packet (auth switch, auth more data, OK/ERR) is
//! re-numbered on the way ([`packet::rewrite_frames`]); after that bytes are
//! copied unchanged. The codec ([`packet`], [`handshake`]) is pure; the I/O
//! is in [`session`].

pub mod handshake;
pub mod packet;
pub mod session;

/// A violation of the MySQL connection phase: the connection is ended and
/// counted as a `protocol` handshake failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A packet header announced more than the handshake cap (or a
    /// multi-packet message) during the connection phase.
    #[error(
        "packet of {len} bytes during the handshake (the limit is {} bytes)",
        packet::MAX_HANDSHAKE_PAYLOAD
    )]
    Oversized {
        /// The announced payload length.
        len: usize,
    },
    /// A message ended early (or the peer hung up in the middle of it).
    #[error("truncated {what}")]
    Truncated {
        /// Which message.
        what: &'static str,
    },
    /// The server's first packet is not a HandshakeV10 greeting.
    #[error("the server's first packet is not a MySQL greeting (protocol byte {first:#04x})")]
    NotHandshakeV10 {
        /// Its first byte.
        first: u8,
    },
    /// The server refused the connection with an ERR packet (relayed to the
    /// client as it was).
    #[error("the server refused the connection: error {code}: {message}")]
    ServerRefused {
        /// MySQL error code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// A peer without the 4.1 protocol (no SSLRequest possible).
    #[error("the peer does not speak the MySQL 4.1 protocol")]
    NoProtocol41,
    /// Outbound: the server does not offer TLS.
    #[error("the MySQL server does not offer TLS (no CLIENT_SSL in its greeting)")]
    ServerWithoutTls,
    /// Inbound: the client sent a plaintext handshake response instead of
    /// an SSLRequest.
    #[error("the client did not ask for TLS (no SSLRequest): plaintext is refused")]
    ClientWithoutTls,
    /// Outbound: the local client asked for TLS; the sidecar does the TLS.
    #[error("the local client sent an SSLRequest; it must speak plaintext to an outbound route")]
    ClientWantsTls,
    /// A full handshake response sent in plaintext with `CLIENT_SSL` set.
    #[error("a plaintext handshake response with the SSL flag set")]
    PlaintextAfterSslFlag,
}
