//! `minica serve`: the online CA's HTTP API against curl and openssl.
