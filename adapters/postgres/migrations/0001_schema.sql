-- resident-auth schema. Times are milliseconds since the Unix epoch (UTC), as the domain's
-- Timestamp; tokens are stored only as SHA-256 digests; passwords only as argon2id PHC.

CREATE TABLE cabinets (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    BIGINT NOT NULL
);

-- An account is linked to at most one cabinet: the primary key says so.
CREATE TABLE cabinet_accounts (
    account_number TEXT PRIMARY KEY CHECK (account_number ~ '^[0-9]{13}$'),
    cabinet_id     BIGINT NOT NULL REFERENCES cabinets (id) ON DELETE CASCADE,
    linked_order   BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX cabinet_accounts_by_cabinet ON cabinet_accounts (cabinet_id, linked_order);

-- One pending registration per account; one pending new cabinet per email.
CREATE TABLE pending_registrations (
    account_number  TEXT PRIMARY KEY CHECK (account_number ~ '^[0-9]{13}$'),
    email           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('new_cabinet', 'add_account')),
    stage           TEXT NOT NULL CHECK (stage IN ('awaiting_confirmation', 'awaiting_activation')),
    token_hash      BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at      BIGINT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until    BIGINT,
    letter_sent_at  BIGINT NOT NULL,
    staged_hash     TEXT CHECK (staged_hash LIKE '$argon2id$%'),
    staged_until    BIGINT
);
CREATE UNIQUE INDEX one_pending_new_cabinet_per_email
    ON pending_registrations (email) WHERE kind = 'new_cabinet';
CREATE INDEX pending_registrations_by_email ON pending_registrations (email);

-- One live recovery link per cabinet.
CREATE TABLE recoveries (
    token_hash   BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    cabinet_id   BIGINT NOT NULL UNIQUE REFERENCES cabinets (id) ON DELETE CASCADE,
    expires_at   BIGINT NOT NULL,
    staged_hash  TEXT CHECK (staged_hash LIKE '$argon2id$%'),
    staged_until BIGINT
);

CREATE TABLE sessions (
    token_hash     BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    cabinet_id     BIGINT NOT NULL REFERENCES cabinets (id) ON DELETE CASCADE,
    active_account TEXT REFERENCES cabinet_accounts (account_number) ON DELETE SET NULL,
    created_at     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL
);
CREATE INDEX sessions_by_cabinet ON sessions (cabinet_id);

-- Shared by every service instance: limits hold across a load balancer.
CREATE TABLE throttles (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        INTEGER NOT NULL CHECK (count >= 0),
    locked_until BIGINT
);

-- The settlement center's registry.
CREATE TABLE directory (
    account_number TEXT PRIMARY KEY CHECK (account_number ~ '^[0-9]{13}$'),
    address        TEXT NOT NULL CHECK (address <> ''),
    premises       TEXT NOT NULL CHECK (premises <> ''),
    surnames       TEXT[] NOT NULL DEFAULT '{}'
);
