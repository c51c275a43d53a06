//! Chain verification compared with `openssl verify`.
