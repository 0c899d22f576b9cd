-- resident-auth tables in SQLite. Every name starts with `resident_auth_`, so the file may
-- also hold a host's own tables. Times are milliseconds since the Unix epoch (UTC), as the
-- domain's Timestamp; tokens are stored only as SHA-256 digests, passwords only as
-- argon2id PHC strings, queued letters only sealed. Tables are STRICT: a value of the
-- wrong type is refused, not converted. Every table with a `version` column is written by
-- compare-and-swap on it, inside a `BEGIN IMMEDIATE` transaction.

CREATE TABLE resident_auth_cabinets (
    id                  BLOB PRIMARY KEY CHECK (length(id) = 16),
    email               TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash       TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    credential_version  INTEGER NOT NULL,
    password_expires_at INTEGER,
    version             INTEGER NOT NULL
) STRICT;

-- An account is linked to at most one cabinet: the primary key says so.
CREATE TABLE resident_auth_cabinet_accounts (
    account_number TEXT PRIMARY KEY CHECK (length(account_number) = 13 AND account_number NOT GLOB '*[^0-9]*'),
    cabinet_id     BLOB NOT NULL REFERENCES resident_auth_cabinets (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL
) STRICT;
CREATE INDEX resident_auth_cabinet_accounts_by_cabinet
    ON resident_auth_cabinet_accounts (cabinet_id, position);

-- One-time links: confirmation, activation, recovery.
CREATE TABLE resident_auth_links (
    token_hash         BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    purpose            TEXT NOT NULL CHECK (purpose IN ('confirmation', 'activation', 'recovery')),
    email              TEXT NOT NULL,
    account_number     TEXT CHECK (length(account_number) = 13 AND account_number NOT GLOB '*[^0-9]*'),
    cabinet_id         BLOB REFERENCES resident_auth_cabinets (id) ON DELETE CASCADE,
    credential_version INTEGER,
    expires_at         INTEGER NOT NULL,
    issuing_until      INTEGER,
    version            INTEGER NOT NULL
) STRICT;
CREATE INDEX resident_auth_links_by_expiry ON resident_auth_links (expires_at);
CREATE INDEX resident_auth_links_by_cabinet ON resident_auth_links (cabinet_id) WHERE cabinet_id IS NOT NULL;
CREATE INDEX resident_auth_links_by_email ON resident_auth_links (email);
CREATE INDEX resident_auth_links_by_account ON resident_auth_links (account_number) WHERE account_number IS NOT NULL;

CREATE TABLE resident_auth_sessions (
    token_hash         BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id         BLOB NOT NULL UNIQUE CHECK (length(session_id) = 16),
    cabinet_id         BLOB NOT NULL REFERENCES resident_auth_cabinets (id) ON DELETE CASCADE,
    credential_version INTEGER NOT NULL,
    active_account     TEXT,
    created_at         INTEGER NOT NULL,
    last_used          INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    client             TEXT CHECK (length(client) <= 64),
    version            INTEGER NOT NULL
) STRICT;
CREATE INDEX resident_auth_sessions_by_cabinet ON resident_auth_sessions (cabinet_id);
CREATE INDEX resident_auth_sessions_by_expiry ON resident_auth_sessions (expires_at);

-- Counters in fixed windows: the service's throttles, cooldowns and attempt limits.
CREATE TABLE resident_auth_counters (
    key         TEXT PRIMARY KEY,
    count       INTEGER NOT NULL CHECK (count > 0),
    window_ends INTEGER NOT NULL
) STRICT;
CREATE INDEX resident_auth_counters_by_window ON resident_auth_counters (window_ends);

-- The settlement center's registry; surnames joined by `;` (never inside a surname: the
-- directory file's own separator).
CREATE TABLE resident_auth_directory (
    account_number TEXT PRIMARY KEY CHECK (length(account_number) = 13 AND account_number NOT GLOB '*[^0-9]*'),
    address        TEXT NOT NULL CHECK (address <> ''),
    premises       TEXT NOT NULL CHECK (premises <> ''),
    surnames       TEXT NOT NULL DEFAULT ''
) STRICT;

-- Operator actions: who did what to which cabinet, when. No email, no account number, no
-- secret: the record outlives an erasure without personal data.
CREATE TABLE resident_auth_audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    operator TEXT NOT NULL CHECK (length(operator) BETWEEN 1 AND 256),
    action   TEXT NOT NULL,
    cabinet  BLOB CHECK (length(cabinet) = 16),
    changed  INTEGER NOT NULL
) STRICT;
CREATE INDEX resident_auth_audit_by_cabinet ON resident_auth_audit (cabinet, at);

-- The mail queue (a transactional outbox): a letter is inserted in the same transaction as
-- the link or cabinet write that needs it. Its content is stored only sealed (AEAD, the
-- service's key), and a sent or dead letter keeps none: the CHECK holds every row to it.
CREATE TABLE resident_auth_letters (
    id              BLOB PRIMARY KEY CHECK (length(id) = 16),
    recipient       TEXT NOT NULL,
    cabinet_id      BLOB CHECK (length(cabinet_id) = 16),
    kind            TEXT NOT NULL,
    sealed          BLOB,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'dead', 'withheld')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    queued_at       INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    give_up_at      INTEGER NOT NULL,
    keep_until      INTEGER,
    last_error      TEXT,
    version         INTEGER NOT NULL,
    CHECK (status = 'queued' OR sealed IS NULL)
) STRICT;
CREATE INDEX resident_auth_letters_due ON resident_auth_letters (next_attempt_at) WHERE status = 'queued';
CREATE INDEX resident_auth_letters_by_recipient ON resident_auth_letters (recipient);
CREATE INDEX resident_auth_letters_by_cabinet ON resident_auth_letters (cabinet_id) WHERE cabinet_id IS NOT NULL;
CREATE INDEX resident_auth_letters_kept ON resident_auth_letters (keep_until) WHERE keep_until IS NOT NULL;

-- Residents' events (the audit trail of the journeys): never an email, a password, a
-- token or a link. The account number and cabinet go with the resident's erasure.
CREATE TABLE resident_auth_events (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    cabinet        BLOB CHECK (length(cabinet) = 16),
    account_number TEXT,
    client         TEXT CHECK (length(client) <= 64)
) STRICT;
CREATE INDEX resident_auth_events_by_cabinet ON resident_auth_events (cabinet, at) WHERE cabinet IS NOT NULL;
CREATE INDEX resident_auth_events_by_account ON resident_auth_events (account_number) WHERE account_number IS NOT NULL;
