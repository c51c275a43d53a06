//! Certificate path validation (work in progress).
