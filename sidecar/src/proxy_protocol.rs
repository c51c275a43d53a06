//! The PROXY protocol v2 header an inbound route can send to its upstream
//! before any payload, so the service learns the real client address and the
//! authenticated peer identity.
//!
//! TLVs sent (see docs/sidecar.md):
//! - `PP2_TYPE_SSL` (0x20): client flags `PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN`,
//!   verify = 0 (verified), with sub-TLV `PP2_SUBTYPE_SSL_VERSION` (0x21,
//!   e.g. `TLSv1.3`) and, when the certificate has one, `PP2_SUBTYPE_SSL_CN`
//!   (0x22, the subject CN; informational only).
//! - `0xE0` (custom range): the peer identity as UTF-8: its SPIFFE ID, else
//!   `dns:NAME`, `ip:ADDR`, or its subject.

use std::net::{IpAddr, SocketAddr};

/// The 12-byte v2 signature.
const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Version 2, command PROXY.
const VERSION_PROXY: u8 = 0x21;
const TCP_OVER_IPV4: u8 = 0x11;
const TCP_OVER_IPV6: u8 = 0x21;
/// `PP2_TYPE_SSL`.
pub const PP2_TYPE_SSL: u8 = 0x20;
/// `PP2_SUBTYPE_SSL_VERSION`.
pub const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// `PP2_SUBTYPE_SSL_CN`.
pub const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// Our custom TLV: the peer identity (SPIFFE ID or other SAN, else subject).
pub const PP2_TYPE_MINICA_PEER_IDENTITY: u8 = 0xE0;
const PP2_CLIENT_SSL: u8 = 0x01;
const PP2_CLIENT_CERT_CONN: u8 = 0x02;

/// What the header says about a connection.
#[derive(Debug, Clone)]
pub struct ProxyHeader<'a> {
    /// The client's address.
    pub source: SocketAddr,
    /// The address the client connected to.
    pub destination: SocketAddr,
    /// The negotiated TLS version, e.g. `TLSv1.3`.
    pub tls_version: &'a str,
    /// The peer's subject CN, if any.
    pub common_name: Option<&'a str>,
    /// The peer identity.
    pub identity: &'a str,
}

fn tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&value[..usize::from(len)]);
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl ProxyHeader<'_> {
    /// Encodes the header.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let family = match (self.source.ip(), self.destination.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                body.extend_from_slice(&s.octets());
                body.extend_from_slice(&d.octets());
                TCP_OVER_IPV4
            }
            (s, d) => {
                body.extend_from_slice(&v6(s));
                body.extend_from_slice(&v6(d));
                TCP_OVER_IPV6
            }
        };
        body.extend_from_slice(&self.source.port().to_be_bytes());
        body.extend_from_slice(&self.destination.port().to_be_bytes());

        // The header's length field has 16 bits. A value that would not fit
        // is left out rather than cut or overflowing into the payload: the CN
        // first (informational), then the identity (the upstream then sees
        // no identity, never a truncated one).
        let mut room =
            usize::from(u16::MAX).saturating_sub(body.len() + 3 + 5 + 3 + self.tls_version.len());
        let identity = Some(self.identity).filter(|id| 3 + id.len() <= room);
        room = room.saturating_sub(identity.map_or(0, |id| 3 + id.len()));
        let common_name = self.common_name.filter(|cn| 3 + cn.len() <= room);

        let mut ssl = vec![PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN, 0, 0, 0, 0];
        tlv(
            &mut ssl,
            PP2_SUBTYPE_SSL_VERSION,
            self.tls_version.as_bytes(),
        );
        if let Some(cn) = common_name {
            tlv(&mut ssl, PP2_SUBTYPE_SSL_CN, cn.as_bytes());
        }
        tlv(&mut body, PP2_TYPE_SSL, &ssl);
        if let Some(identity) = identity {
            tlv(
                &mut body,
                PP2_TYPE_MINICA_PEER_IDENTITY,
                identity.as_bytes(),
            );
        }

        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(&SIGNATURE);
        out.push(VERSION_PROXY);
        out.push(family);
        let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_ipv4_with_identity_tlv() {
        let h = ProxyHeader {
            source: "10.0.0.1:5000".parse().unwrap(),
            destination: "10.0.0.2:8443".parse().unwrap(),
            tls_version: "TLSv1.3",
            common_name: None,
            identity: "spiffe://td/a",
        };
        let b = h.encode();
        assert_eq!(&b[..12], &SIGNATURE);
        assert_eq!(b[12], 0x21);
        assert_eq!(b[13], 0x11);
        let len = usize::from(u16::from_be_bytes([b[14], b[15]]));
        assert_eq!(b.len(), 16 + len);
        assert_eq!(&b[16..20], &[10, 0, 0, 1]);
        assert_eq!(&b[20..24], &[10, 0, 0, 2]);
        assert_eq!(u16::from_be_bytes([b[24], b[25]]), 5000);
        assert_eq!(u16::from_be_bytes([b[26], b[27]]), 8443);
        // SSL TLV: type, len, client, verify(4), version sub-TLV.
        assert_eq!(b[28], PP2_TYPE_SSL);
        let ssl_len = usize::from(u16::from_be_bytes([b[29], b[30]]));
        assert_eq!(ssl_len, 5 + 3 + 7);
        assert_eq!(b[31], 0x03);
        let id_at = 31 + ssl_len;
        assert_eq!(b[id_at], 0xE0);
        assert_eq!(&b[id_at + 3..], b"spiffe://td/a");
    }

    #[test]
    fn a_value_too_long_for_the_header_is_left_out() {
        let huge = "x".repeat(70_000);
        let h = ProxyHeader {
            source: "10.0.0.1:5000".parse().unwrap(),
            destination: "10.0.0.2:8443".parse().unwrap(),
            tls_version: "TLSv1.3",
            common_name: Some(&huge),
            identity: &huge,
        };
        let b = h.encode();
        let len = usize::from(u16::from_be_bytes([b[14], b[15]]));
        assert_eq!(b.len(), 16 + len, "the length field covers the header");
        assert!(!b.windows(3).any(|w| w == b"xxx"));
        let fits = "y".repeat(65_000);
        let b = ProxyHeader {
            common_name: Some(&huge),
            identity: &fits,
            ..h
        }
        .encode();
        assert_eq!(
            b.len(),
            16 + usize::from(u16::from_be_bytes([b[14], b[15]]))
        );
        assert!(
            b.ends_with(fits.as_bytes()),
            "the identity is kept, the CN left out"
        );
    }

    #[test]
    fn mixed_families_use_ipv6_mapped() {
        let h = ProxyHeader {
            source: "[::1]:1".parse().unwrap(),
            destination: "127.0.0.1:2".parse().unwrap(),
            tls_version: "TLSv1.3",
            common_name: Some("a"),
            identity: "x",
        };
        let b = h.encode();
        assert_eq!(b[13], 0x21);
        assert_eq!(
            &b[32..48],
            &std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets()
        );
    }
}
