//! Names: e-mail matching, e-mail name constraints, dNSName syntax, and the
//! rule that a subject CN must be one of the SANs.

use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, NameConstraints};
use x509_parser::prelude::X509Certificate;

/// The rfc822Name SANs of `cert` (empty when it has none or the SAN is
/// malformed; malformed SANs are rejected elsewhere).
pub(super) fn rfc822_sans<'a>(cert: &'a X509Certificate<'a>) -> Vec<&'a str> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::RFC822Name(e) => Some(*e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The e-mail addresses of the subject DN's emailAddress attributes.
pub(super) fn subject_emails(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_email()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect()
}

/// Splits `local@domain`; `None` unless there is exactly one `@` with text
/// on both sides.
fn split_mailbox(addr: &str) -> Option<(&str, &str)> {
    let (local, domain) = addr.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('@') {
        return None;
    }
    Some((local, domain))
}

/// Whether SAN mailbox `presented` is `wanted`: local parts compared
/// exactly, domains case-insensitively (RFC 5280 §7.5).
pub(super) fn email_matches(presented: &str, wanted: &str) -> bool {
    match (split_mailbox(presented), split_mailbox(wanted)) {
        (Some((pl, pd)), Some((wl, wd))) => pl == wl && pd.eq_ignore_ascii_case(wd),
        _ => false,
    }
}

/// Whether mailbox `addr` is within rfc822Name constraint `base`
/// (RFC 5280 §4.2.1.10): `user@host` one mailbox, `host` every mailbox on
/// that host, `.host` every mailbox on a sub-domain of host.
fn email_in_subtree(addr: &str, base: &str) -> bool {
    let Some((_, domain)) = split_mailbox(addr) else {
        return false;
    };
    if base.contains('@') {
        return email_matches(addr, base);
    }
    if let Some(suffix) = base.strip_prefix('.') {
        let d = domain.to_ascii_lowercase();
        let s = suffix.to_ascii_lowercase();
        return d.len() > s.len() + 1
            && d.ends_with(&s)
            && d.as_bytes()[d.len() - s.len() - 1] == b'.';
    }
    domain.eq_ignore_ascii_case(base)
}

/// Checks the e-mail addresses of a certificate below `nc` against its
/// rfc822Name subtrees. `Err` names the offending address.
pub(super) fn check_email_constraints(
    nc: &NameConstraints<'_>,
    emails: &[&str],
) -> Result<(), String> {
    let subtrees =
        |trees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| -> Vec<String> {
            trees
                .iter()
                .flatten()
                .filter_map(|t| match &t.base {
                    GeneralName::RFC822Name(b) => Some((*b).to_owned()),
                    _ => None,
                })
                .collect()
        };
    let permitted = subtrees(&nc.permitted_subtrees);
    let excluded = subtrees(&nc.excluded_subtrees);
    for addr in emails {
        if excluded.iter().any(|b| email_in_subtree(addr, b)) {
            return Err(format!("{addr} is in an excluded e-mail subtree"));
        }
        if !permitted.is_empty() && !permitted.iter().any(|b| email_in_subtree(addr, b)) {
            return Err(format!("{addr} is outside the permitted e-mail subtrees"));
        }
    }
    Ok(())
}

/// Whether `name` is a syntactically valid dNSName as presented in a
/// certificate: LDH labels, at most 63 octets each and 253 in all, no `_`,
/// an optional `*` only as the whole left-most label.
pub(super) fn valid_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 || name.ends_with('.') {
        return false;
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return false;
        }
    }
    // `*` alone or `*.tld` is not a valid presented wildcard.
    !(name == "*" || (name.starts_with("*.") && !name[2..].contains('.')))
}

/// A SAN entry is well-formed: a valid host name, a 4- or 16-byte address,
/// a mailbox with exactly one `@`.
pub(super) fn check_san_entry(name: &GeneralName<'_>) -> Result<(), String> {
    match name {
        GeneralName::DNSName(d) if !valid_dns_name(d) => {
            Err(format!("dNSName `{d}` is not a valid host name"))
        }
        GeneralName::IPAddress(b) if b.len() != 4 && b.len() != 16 => {
            Err("iPAddress SAN is not a 4- or 16-byte address".into())
        }
        GeneralName::RFC822Name(e) if split_mailbox(e).is_none() => {
            Err(format!("rfc822Name `{e}` is not a valid mailbox"))
        }
        _ => Ok(()),
    }
}

/// Name constraint subtrees are well-formed: dNSName a host name without
/// wildcard or leading dot (empty allowed: every name), iPAddress an
/// address and a contiguous mask (8 or 32 bytes), rfc822Name a mailbox, a
/// host or a `.domain`.
pub(super) fn check_constraint_syntax(nc: &NameConstraints<'_>) -> Result<(), String> {
    let trees = nc
        .permitted_subtrees
        .iter()
        .chain(nc.excluded_subtrees.iter());
    for tree in trees.flatten() {
        match &tree.base {
            GeneralName::DNSName(d) if !d.is_empty() && (d.contains('*') || !valid_dns_name(d)) => {
                return Err(format!("malformed dNSName constraint `{d}`"));
            }
            GeneralName::IPAddress(b) => {
                let mask = match b.len() {
                    8 => &b[4..],
                    32 => &b[16..],
                    _ => return Err("malformed iPAddress constraint".into()),
                };
                let bits: Vec<bool> = mask
                    .iter()
                    .flat_map(|byte| (0..8).rev().map(move |i| byte & (1 << i) != 0))
                    .collect();
                if bits.windows(2).any(|w| !w[0] && w[1]) {
                    return Err("iPAddress constraint mask is not contiguous".into());
                }
            }
            GeneralName::RFC822Name(e) => {
                let ok = if e.contains('@') {
                    split_mailbox(e).is_some()
                } else {
                    let host = e.strip_prefix('.').unwrap_or(e);
                    valid_dns_name(host)
                };
                if !ok {
                    return Err(format!("malformed rfc822Name constraint `{e}`"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `name` is `base` or a sub-domain of it (case-insensitive); an
/// empty base contains every name (RFC 5280 §4.2.1.10).
fn dns_within(name: &str, base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    let (n, b) = (name.to_ascii_lowercase(), base.to_ascii_lowercase());
    n == b || (n.len() > b.len() && n.ends_with(&b) && n.as_bytes()[n.len() - b.len() - 1] == b'.')
}

/// Whether address `addr` (4 or 16 bytes) is inside `base` (address and
/// mask, 8 or 32 bytes).
fn ip_within(addr: &[u8], base: &[u8]) -> bool {
    let n = addr.len();
    base.len() == 2 * n && (0..n).all(|i| addr[i] & base[n + i] == base[i] & base[n + i])
}

/// Checks the dNSName, iPAddress and rfc822Name names of one certificate
/// against a CA's name constraints (excluded first, then permitted, per
/// name type). `emails` are its rfc822Name SANs and subject emailAddress
/// values. `Err` names the offending name; a constraint of any other type
/// is refused (the caller only uses this when there is none).
pub(super) fn check_constraints(
    nc: &NameConstraints<'_>,
    sans: &[GeneralName<'_>],
    emails: &[&str],
) -> Result<(), String> {
    let empty = Vec::new();
    let permitted = nc.permitted_subtrees.as_ref().unwrap_or(&empty);
    let excluded = nc.excluded_subtrees.as_ref().unwrap_or(&empty);
    for san in sans {
        match san {
            GeneralName::DNSName(name) => {
                let wildcard_parent = name.strip_prefix("*.");
                for t in excluded {
                    if let GeneralName::DNSName(base) = t.base {
                        let covers = wildcard_parent.is_some_and(|p| dns_within(base, p));
                        if dns_within(name, base) || covers {
                            return Err(format!("{name} is in an excluded DNS subtree"));
                        }
                    }
                }
                let bases: Vec<&str> = permitted
                    .iter()
                    .filter_map(|t| match t.base {
                        GeneralName::DNSName(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                if !bases.is_empty() && !bases.iter().any(|b| dns_within(name, b)) {
                    return Err(format!("{name} is outside the permitted DNS subtrees"));
                }
            }
            GeneralName::IPAddress(addr) => {
                let ip = ip_text(addr).unwrap_or_else(|| "an address".into());
                for t in excluded {
                    if let GeneralName::IPAddress(base) = t.base {
                        if ip_within(addr, base) {
                            return Err(format!("{ip} is in an excluded address range"));
                        }
                    }
                }
                let bases: Vec<&[u8]> = permitted
                    .iter()
                    .filter_map(|t| match t.base {
                        GeneralName::IPAddress(b) if b.len() == 2 * addr.len() => Some(b),
                        _ => None,
                    })
                    .collect();
                let any_ip_subtree = permitted
                    .iter()
                    .any(|t| matches!(t.base, GeneralName::IPAddress(_)));
                if any_ip_subtree && !bases.iter().any(|b| ip_within(addr, b)) {
                    return Err(format!("{ip} is outside the permitted address ranges"));
                }
            }
            _ => {}
        }
    }
    check_email_constraints(nc, emails)
}

/// Whether every subtree is of a type [`check_constraints`] handles.
pub(super) fn constraints_supported(nc: &NameConstraints<'_>) -> bool {
    let trees = nc
        .permitted_subtrees
        .iter()
        .chain(nc.excluded_subtrees.iter());
    trees.flatten().all(|t| {
        matches!(
            t.base,
            GeneralName::DNSName(_) | GeneralName::IPAddress(_) | GeneralName::RFC822Name(_)
        )
    })
}

/// Whether the constraints have an rfc822Name subtree.
pub(super) fn has_email_constraint(nc: &NameConstraints<'_>) -> bool {
    let trees = nc
        .permitted_subtrees
        .iter()
        .chain(nc.excluded_subtrees.iter());
    trees
        .flatten()
        .any(|t| matches!(t.base, GeneralName::RFC822Name(_)))
}

/// CA/B Forum BR 7.1.4.3: the subject has at most one CN, and it is a
/// character-for-character copy of a dNSName SAN, or the canonical text of
/// an iPAddress SAN (dotted decimal without leading zeros; RFC 5952 for
/// IPv6), or an rfc822Name or URI SAN. `Err` says which rule is broken.
pub(super) fn check_cn_in_sans(
    cert: &X509Certificate<'_>,
    sans: &[GeneralName<'_>],
) -> Result<(), String> {
    let mut cns = cert.subject().iter_common_name();
    let Some(cn) = cns.next() else {
        return Ok(());
    };
    if cns.next().is_some() {
        return Err("more than one subject CN".into());
    }
    let Ok(cn) = cn.as_str() else {
        return Err("the subject CN is not a string".into());
    };
    let ok = sans.iter().any(|san| match san {
        GeneralName::DNSName(d) | GeneralName::RFC822Name(d) | GeneralName::URI(d) => *d == cn,
        GeneralName::IPAddress(bytes) => ip_text(bytes).is_some_and(|ip| ip == cn),
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(format!("subject CN `{cn}` is not one of its SANs"))
    }
}

/// The canonical text of an iPAddress SAN (RFC 5952 for IPv6, which is how
/// Rust prints it).
fn ip_text(bytes: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4).to_string());
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|v6| IpAddr::from(v6).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_matching() {
        assert!(email_matches("alice@Example.COM", "alice@example.com"));
        assert!(!email_matches("Alice@example.com", "alice@example.com"));
        assert!(!email_matches("alice", "alice"));
        assert!(email_in_subtree("a@example.com", "example.com"));
        assert!(!email_in_subtree("a@sub.example.com", "example.com"));
        assert!(email_in_subtree("a@sub.example.com", ".example.com"));
        assert!(!email_in_subtree("a@example.com", ".example.com"));
        assert!(!email_in_subtree("a@badexample.com", ".example.com"));
        assert!(email_in_subtree("a@example.com", "a@EXAMPLE.com"));
        assert!(!email_in_subtree("b@example.com", "a@example.com"));
    }

    #[test]
    fn san_and_constraint_syntax() {
        use x509_parser::extensions::GeneralSubtree;
        assert!(check_san_entry(&GeneralName::IPAddress(&[10, 0, 0, 1])).is_ok());
        assert!(check_san_entry(&GeneralName::IPAddress(&[10, 0, 0, 0, 255, 0, 0, 0])).is_err());
        assert!(check_san_entry(&GeneralName::RFC822Name("a@b@example.com")).is_err());
        assert!(check_san_entry(&GeneralName::RFC822Name("a@example.com")).is_ok());
        assert!(check_san_entry(&GeneralName::DNSName(".example.com")).is_err());
        let nc = |base| NameConstraints {
            permitted_subtrees: Some(vec![GeneralSubtree { base }]),
            excluded_subtrees: None,
        };
        let ok = |base| check_constraint_syntax(&nc(base)).is_ok();
        assert!(ok(GeneralName::DNSName("example.com")));
        assert!(!ok(GeneralName::DNSName("*.example.com")));
        assert!(!ok(GeneralName::DNSName(".example.com")));
        assert!(ok(GeneralName::IPAddress(&[
            192, 0, 2, 0, 255, 255, 255, 0
        ])));
        assert!(!ok(GeneralName::IPAddress(&[127, 0, 0, 1])));
        assert!(!ok(GeneralName::IPAddress(&[192, 0, 2, 0, 255, 0, 255, 0])));
        assert!(ok(GeneralName::RFC822Name("example.com")));
        assert!(ok(GeneralName::RFC822Name(".example.com")));
        assert!(ok(GeneralName::RFC822Name("foo@example.com")));
        assert!(!ok(GeneralName::RFC822Name("invalid@invalid@example.com")));
    }

    #[test]
    fn dns_and_ip_constraints() {
        use x509_parser::extensions::GeneralSubtree;
        let nc = NameConstraints {
            permitted_subtrees: Some(vec![
                GeneralSubtree {
                    base: GeneralName::DNSName("example.com"),
                },
                GeneralSubtree {
                    base: GeneralName::IPAddress(&[192, 0, 2, 0, 255, 255, 255, 0]),
                },
            ]),
            excluded_subtrees: Some(vec![GeneralSubtree {
                base: GeneralName::DNSName("bad.example.com"),
            }]),
        };
        let ok = |san: GeneralName<'_>| check_constraints(&nc, &[san], &[]).is_ok();
        assert!(ok(GeneralName::DNSName("example.com")));
        assert!(ok(GeneralName::DNSName("a.b.EXAMPLE.com")));
        assert!(!ok(GeneralName::DNSName("notexample.com")));
        assert!(!ok(GeneralName::DNSName("x.bad.example.com")));
        assert!(
            !ok(GeneralName::DNSName("*.example.com")),
            "could cover bad.example.com"
        );
        assert!(ok(GeneralName::IPAddress(&[192, 0, 2, 7])));
        assert!(!ok(GeneralName::IPAddress(&[192, 0, 3, 7])));
        assert!(
            !ok(GeneralName::IPAddress(&[0; 16])),
            "no permitted IPv6 range"
        );
        assert!(ok(GeneralName::URI("http://x")));
    }

    #[test]
    fn ip_text_is_canonical() {
        assert_eq!(ip_text(&[192, 168, 1, 1]).unwrap(), "192.168.1.1");
        let v6: std::net::Ipv6Addr = "2001:db8::1:0:0:1".parse().unwrap();
        assert_eq!(ip_text(&v6.octets()).unwrap(), "2001:db8::1:0:0:1");
        assert!(ip_text(&[1, 2, 3]).is_none());
    }

    #[test]
    fn dns_syntax() {
        assert!(valid_dns_name("svc-a.internal"));
        assert!(valid_dns_name("*.example.com"));
        assert!(valid_dns_name("localhost"));
        assert!(!valid_dns_name("under_score.example.com"));
        assert!(!valid_dns_name("a.*.example.com"));
        assert!(!valid_dns_name("*.com"));
        assert!(!valid_dns_name("-a.example.com"));
        assert!(!valid_dns_name("example.com."));
        assert!(!valid_dns_name(""));
    }
}
