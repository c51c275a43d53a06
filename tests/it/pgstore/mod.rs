//! The PostgreSQL ledger (`--store postgres://...`) on a real PostgreSQL
//! server started by the test, shared by CLI processes and `minica serve`.
