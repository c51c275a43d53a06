//! PROXY protocol v2 headers (`--proxy-protocol v2`) read back by an
//! independent reader (HAProxy's rules): addresses, TLS version, CN and the
//! identity TLV round-trip for any input, and the declared length always
//! covers exactly the header, so payload is never read as header (or the
//! reverse), even for values too long for one header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use minica_sidecar::proxy_protocol::ProxyHeader;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::parsers::check;

/// What a PROXY v2 reader (HAProxy's rules) gets out of a header.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    source: SocketAddr,
    destination: SocketAddr,
    tls_version: Option<Vec<u8>>,
    common_name: Option<Vec<u8>>,
    identity: Option<Vec<u8>>,
    header_len: usize,
}

fn tlvs(mut b: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 3 {
            return Err("truncated TLV header".into());
        }
        let len = usize::from(u16::from_be_bytes([b[1], b[2]]));
        let value = b.get(3..3 + len).ok_or("TLV longer than the header")?;
        out.push((b[0], value));
        b = &b[3 + len..];
    }
    Ok(out)
}

fn decode_proxy_v2(b: &[u8]) -> Result<Decoded, String> {
    const SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
    if b.len() < 16 || &b[..12] != SIG || b[12] != 0x21 {
        return Err("bad signature or command".into());
    }
    let len = usize::from(u16::from_be_bytes([b[14], b[15]]));
    let body = b
        .get(16..16 + len)
        .ok_or("header shorter than its length")?;
    let (source, destination, rest) = match b[13] {
        0x11 => {
            let a = body.get(..12).ok_or("short v4 address block")?;
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            (
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
                &body[12..],
            )
        }
        0x21 => {
            let a = body.get(..36).ok_or("short v6 address block")?;
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            (
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
                &body[36..],
            )
        }
        f => return Err(format!("family {f:#x}")),
    };
    let mut d = Decoded {
        source,
        destination,
        tls_version: None,
        common_name: None,
        identity: None,
        header_len: 16 + len,
    };
    for (kind, value) in tlvs(rest)? {
        match kind {
            0x20 => {
                let sub = value.get(5..).ok_or("short SSL TLV")?;
                for (k, v) in tlvs(sub)? {
                    match k {
                        0x21 => d.tls_version = Some(v.to_vec()),
                        0x22 => d.common_name = Some(v.to_vec()),
                        _ => {}
                    }
                }
            }
            0xE0 => d.identity = Some(value.to_vec()),
            _ => {}
        }
    }
    Ok(d)
}

/// A PROXY header field: given text, or that many bytes.
#[derive(Debug, Clone)]
enum Field {
    Text(String),
    Len(usize),
}

impl Field {
    fn text(self) -> String {
        match self {
            Field::Text(t) => t,
            Field::Len(n) => "y".repeat(n),
        }
    }
}

fn as_v6(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    }
}

#[test]
fn proxy_v2_headers_round_trip_through_a_reader() {
    let addr = prop_oneof![
        any::<(u32, u16)>().prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(ip.into()), p)),
        any::<(u128, u16)>().prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(ip.into()), p)),
    ];
    // Text up to 40 characters, or a length (filled with `y` in the test,
    // so that a failure prints a number): up to 300 bytes, and a few far
    // past what one header holds.
    let text = prop_oneof![
        8 => "\\PC{0,40}".prop_map(Field::Text),
        1 => (0usize..300).prop_map(Field::Len),
        1 => (60_000usize..70_000).prop_map(Field::Len),
    ];
    let strategy = (
        addr.clone(),
        addr,
        "TLSv1\\.[23]",
        proptest::option::of(text.clone()),
        text,
    );
    check(
        "proxy v2",
        strategy,
        |(source, destination, version, cn, identity)| {
            let cn = cn.map(Field::text);
            let identity = identity.text();
            let h = ProxyHeader {
                source,
                destination,
                tls_version: &version,
                common_name: cn.as_deref(),
                identity: &identity,
            };
            let mut bytes = h.encode();
            // The payload that follows must never be read as part of the
            // header: append a marker and check that the header ends before it.
            let header_len = bytes.len();
            bytes.extend_from_slice(b"PAYLOAD");
            let d = decode_proxy_v2(&bytes).map_err(TestCaseError::fail)?;
            prop_assert_eq!(d.header_len, header_len, "declared length != header length");
            let both_v4 = source.is_ipv4() && destination.is_ipv4();
            if both_v4 {
                prop_assert_eq!(d.source, source);
                prop_assert_eq!(d.destination, destination);
            } else {
                prop_assert_eq!(d.source, as_v6(source));
                prop_assert_eq!(d.destination, as_v6(destination));
            }
            prop_assert_eq!(d.tls_version.as_deref(), Some(version.as_bytes()));
            // Values that fit are carried whole; a value too long for the
            // header is cut, never allowed to spill into the payload.
            if identity.len() + cn.as_ref().map_or(0, String::len) < 60_000 {
                prop_assert_eq!(d.identity.as_deref(), Some(identity.as_bytes()));
                prop_assert_eq!(d.common_name.as_deref(), cn.as_deref().map(str::as_bytes));
            } else if let Some(id) = &d.identity {
                prop_assert!(identity.as_bytes().starts_with(id));
            }
            Ok(())
        },
    );
}
