//! The CA hierarchy and what needs the operator (`minica status`).
//!
//! A warning is raised when a CA certificate has less time left than the
//! longest validity of what it may issue (the current intermediate: the
//! longest of [`crate::DEFAULT_LEAF_VALIDITY`] and the lifetimes of its
//! active leaves; the current root: the current intermediate's lifetime),
//! when a current CA certificate has expired, and while a root rotation
//! awaits `minica rotate root --finish`.

use time::OffsetDateTime;

use crate::ca::{Ca, CaCert};
use crate::record::{CertKind, DisplayStatus};
use crate::serial::Serial;

/// The role of a CA certificate in the home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// Signs leaves (intermediate) or the current intermediate (root).
    Current,
    /// A cross-certificate of the current root (same name and key), signed
    /// by a retired root.
    Cross,
    /// Kept after a rotation (a retired root stays in the bundle until
    /// `rotate root --finish`).
    Retired,
}

/// One CA certificate of the hierarchy.
#[derive(Debug, Clone)]
pub struct CaEntry {
    /// Root or intermediate.
    pub kind: CertKind,
    /// Current, cross or retired.
    pub role: CaRole,
    /// The subject (RFC 4514) or, for cross-certificates, the CN.
    pub subject: String,
    /// Its serial.
    pub serial: Serial,
    /// The issuer's serial.
    pub issuer_serial: Serial,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// `minica status`: the hierarchy, leaf counts and warnings.
#[derive(Debug, Clone)]
pub struct CaStatus {
    /// Roots first (current, retired, cross-certificate), then
    /// intermediates (current, retired).
    pub cas: Vec<CaEntry>,
    /// Active (unexpired) leaves.
    pub active_leaves: usize,
    /// Active leaves expiring within 30 days.
    pub expiring_30d: usize,
    /// Revoked leaves.
    pub revoked_leaves: usize,
    /// Problems that need the operator, one line each (printed after
    /// `warning: `).
    pub warnings: Vec<String>,
}

fn days(d: time::Duration) -> i64 {
    d.whole_days()
}

impl CaRole {
    /// `current`, `cross` or `retired`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::Current => "current",
            CaRole::Cross => "cross",
            CaRole::Retired => "retired",
        }
    }
}

impl Ca {
    /// The hierarchy and its warnings (see the module docs).
    pub fn status(&self) -> Result<CaStatus, crate::Error> {
        let now = OffsetDateTime::now_utc();
        let records = self.records()?;
        let issuer_of = |s: &Serial| {
            records
                .iter()
                .find(|r| &r.serial == s)
                .map(|r| r.issuer_serial.clone())
                .unwrap_or_else(|| s.clone())
        };
        let entry = |c: &CaCert, kind, role| CaEntry {
            kind,
            role,
            subject: c.subject().to_string(),
            serial: c.serial().clone(),
            issuer_serial: issuer_of(c.serial()),
            not_after: c.not_after(),
        };
        let gens = self.generations();
        let mut cas = vec![entry(self.root(), CertKind::Root, CaRole::Current)];
        for r in &gens.retired_roots {
            cas.push(entry(r, CertKind::Root, CaRole::Retired));
        }
        for c in &gens.cross {
            cas.push(CaEntry {
                kind: CertKind::Root,
                role: CaRole::Cross,
                subject: self.root().subject().to_string(),
                serial: c.serial.clone(),
                issuer_serial: issuer_of(&c.serial),
                not_after: c.not_after,
            });
        }
        cas.push(entry(
            self.intermediate(),
            CertKind::Intermediate,
            CaRole::Current,
        ));
        for r in &gens.retired_intermediates {
            if r.not_after() > now {
                cas.push(entry(r, CertKind::Intermediate, CaRole::Retired));
            }
        }

        let leaves = || records.iter().filter(|r| r.kind == CertKind::Leaf);
        let active = || leaves().filter(|r| r.status_at(now) == DisplayStatus::Active);
        let soon = now + time::Duration::days(30);
        let mut warnings = Vec::new();

        let int = self.intermediate();
        let longest = active()
            .filter(|r| &r.issuer_serial == int.serial())
            .map(|r| r.not_after - r.not_before)
            .chain(std::iter::once(
                time::Duration::try_from(crate::DEFAULT_LEAF_VALIDITY).unwrap_or_default(),
            ))
            .max()
            .unwrap_or_default();
        let left = int.not_after() - now;
        if left <= time::Duration::ZERO {
            warnings.push(format!(
                "the intermediate {} (serial {}) has expired: no leaf can be issued; run `minica rotate intermediate`",
                int.subject(),
                int.serial()
            ));
        } else if left < longest {
            warnings.push(format!(
                "the intermediate {} (serial {}) expires in {} days, less than the longest leaf validity it issues ({} days); run `minica rotate intermediate`",
                int.subject(),
                int.serial(),
                days(left),
                days(longest)
            ));
        }
        let root = self.root();
        let root_left = root.not_after() - now;
        let int_life = int.not_after() - int.not_before();
        if root_left <= time::Duration::ZERO {
            warnings.push(format!(
                "the root {} (serial {}) has expired; run `minica rotate root`",
                root.subject(),
                root.serial()
            ));
        } else if root_left < int_life {
            warnings.push(format!(
                "the root {} (serial {}) expires in {} days, less than the intermediate validity it issues ({} days); run `minica rotate root`",
                root.subject(),
                root.serial(),
                days(root_left),
                days(int_life)
            ));
        }
        if self.root_rotation_unfinished() {
            warnings.push(
                "a root rotation is unfinished: the bundle still trusts the old root; once every client has the new bundle and the leaves under the old root are renewed or expired, run `minica rotate root --finish`".to_string(),
            );
        }
        Ok(CaStatus {
            cas,
            active_leaves: active().count(),
            expiring_30d: active().filter(|r| r.not_after <= soon).count(),
            revoked_leaves: leaves()
                .filter(|r| r.status_at(now) == DisplayStatus::Revoked)
                .count(),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::CaHome;
    use crate::InitOptions;
    use std::time::Duration;

    #[test]
    fn healthy_ca_has_no_warning_and_a_short_intermediate_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path().join("a")), &InitOptions::default()).unwrap();
        let st = ca.status().unwrap();
        assert!(st.warnings.is_empty(), "{:?}", st.warnings);
        assert_eq!(st.cas.len(), 2);
        let short = InitOptions {
            intermediate_validity: Duration::from_secs(30 * 86_400),
            ..InitOptions::default()
        };
        let ca = Ca::init(&CaHome::new(dir.path().join("b")), &short).unwrap();
        let st = ca.status().unwrap();
        assert_eq!(st.warnings.len(), 1, "{:?}", st.warnings);
        assert!(st.warnings[0].contains("rotate intermediate"));
    }
}
