//! minica's online CA, `minica serve`: enrolment with one-time tokens,
//! renewal over mutual TLS, the bundle and CRL over HTTPS, metrics.
#![warn(missing_docs)]
