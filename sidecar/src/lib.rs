//! The minica sidecar (work in progress).
#![warn(missing_docs)]
