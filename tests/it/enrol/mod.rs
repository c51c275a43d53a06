//! `minica enroll`, `minica renew --ca-url` and the sidecar's
//! `--renew-from`/`--crl-from` against a running `minica serve`.
