//! Certificate revocation lists (work in progress).
