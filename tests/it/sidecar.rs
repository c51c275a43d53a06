//! `minica-sidecar` end to end: curl, openssl s_client/s_server through real sidecar processes.
