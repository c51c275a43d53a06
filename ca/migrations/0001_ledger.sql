-- minica ledger, schema version 1.
-- Applied by ca/src/store/postgres.rs inside one transaction holding
-- pg_advisory_xact_lock, and recorded in minica_schema.

-- Every certificate: the record as JSON, plus the columns queried.
CREATE TABLE certificates (
    serial        bytea PRIMARY KEY,     -- serial uniqueness
    name_lower    text  NOT NULL,        -- by_name (ASCII lowercase)
    issuer_serial bytea NOT NULL,
    status        text  NOT NULL,        -- active | superseded | revoked
    record        jsonb NOT NULL
);
CREATE INDEX certificates_name_lower ON certificates (name_lower);
-- What goes on an issuer's CRL, without reading every record.
CREATE INDEX certificates_revoked_by ON certificates (issuer_serial)
    WHERE status = 'revoked';

-- The last CRL number handed out per issuer.
CREATE TABLE crl_numbers (
    issuer_serial bytea  PRIMARY KEY,
    n             bigint NOT NULL CHECK (n > 0)
);

-- One-time enrolment tokens, by SHA-256 of the token (never the token).
CREATE TABLE tokens (
    hash    text   PRIMARY KEY,
    expires bigint NOT NULL,             -- Unix seconds
    used    bigint,                      -- Unix seconds, NULL while unused
    record  jsonb  NOT NULL
);
