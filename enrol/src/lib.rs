//! The client side of minica's online CA (`minica serve`): the HTTP API's
//! request and response types, shared with the server, and (to come) key and
//! CSR generation, HTTPS calls pinned to the CA, and identity files.
#![warn(missing_docs)]

pub mod api;
