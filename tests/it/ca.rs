//! `minica` end to end: init, issue, inspect, list, bundle, checked by openssl and rustls.
