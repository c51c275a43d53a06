//! The minica certificate authority (work in progress).
#![warn(missing_docs)]

pub mod crl;
pub mod verify;
