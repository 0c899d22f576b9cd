-- resident-auth tables. They are created in the library's own schema (default
-- `resident_auth`): the migration runs with `search_path` set to it, so nothing here names
-- a schema. Times are milliseconds since the Unix epoch (UTC), as the domain's Timestamp;
-- tokens are stored only as SHA-256 digests; passwords only as argon2id PHC strings.
-- Every table with a `version` column is written by compare-and-swap on it.

CREATE TABLE cabinets (
    id                 BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    email              TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash      TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    credential_version BIGINT NOT NULL,
    version            BIGINT NOT NULL
);

-- An account is linked to at most one cabinet: the primary key says so.
CREATE TABLE cabinet_accounts (
    account_number TEXT PRIMARY KEY CHECK (account_number ~ '^[0-9]{13}$'),
    cabinet_id     BYTEA NOT NULL REFERENCES cabinets (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL
);
CREATE INDEX cabinet_accounts_by_cabinet ON cabinet_accounts (cabinet_id, position);

-- One-time links: confirmation, activation, recovery.
CREATE TABLE links (
    token_hash         BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    purpose            TEXT NOT NULL CHECK (purpose IN ('confirmation', 'activation', 'recovery')),
    email              TEXT NOT NULL,
    account_number     TEXT CHECK (account_number ~ '^[0-9]{13}$'),
    cabinet_id         BYTEA REFERENCES cabinets (id) ON DELETE CASCADE,
    credential_version BIGINT,
    expires_at         BIGINT NOT NULL,
    issuing_until      BIGINT,
    version            BIGINT NOT NULL
);
CREATE INDEX links_by_expiry ON links (expires_at);
CREATE INDEX links_by_cabinet ON links (cabinet_id) WHERE cabinet_id IS NOT NULL;

-- Sessions are read on every request and written about once a minute each: the free
-- space left in every page keeps those updates HOT. No index on a column they update.
CREATE TABLE sessions (
    token_hash         BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id         BYTEA NOT NULL UNIQUE CHECK (octet_length(session_id) = 16),
    cabinet_id         BYTEA NOT NULL REFERENCES cabinets (id) ON DELETE CASCADE,
    credential_version BIGINT NOT NULL,
    active_account     TEXT,
    created_at         BIGINT NOT NULL,
    last_used          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    client             TEXT CHECK (length(client) <= 64),
    version            BIGINT NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX sessions_by_cabinet ON sessions (cabinet_id);

-- Counters in fixed windows, shared by every service instance: limits hold across a
-- load balancer.
CREATE TABLE counters (
    key         TEXT PRIMARY KEY,
    count       INTEGER NOT NULL CHECK (count > 0),
    window_ends BIGINT NOT NULL
);

-- The settlement center's registry.
CREATE TABLE directory (
    account_number TEXT PRIMARY KEY CHECK (account_number ~ '^[0-9]{13}$'),
    address        TEXT NOT NULL CHECK (address <> ''),
    premises       TEXT NOT NULL CHECK (premises <> ''),
    surnames       TEXT[] NOT NULL DEFAULT '{}'
);
