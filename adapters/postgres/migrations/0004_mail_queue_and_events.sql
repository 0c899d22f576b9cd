-- The mail queue (a transactional outbox): a letter is inserted in the same transaction as
-- the link or cabinet write that needs it. Its content is stored only sealed (AEAD, the
-- service's key), and a sent or dead letter keeps none: the CHECK holds every row to it.
CREATE TABLE letters (
    id              BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    recipient       TEXT NOT NULL,
    cabinet_id      BYTEA CHECK (octet_length(cabinet_id) = 16),
    kind            TEXT NOT NULL,
    sealed          BYTEA,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'dead', 'withheld')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    queued_at       BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at      BIGINT NOT NULL,
    keep_until      BIGINT,
    last_error      TEXT,
    version         BIGINT NOT NULL,
    CHECK (status = 'queued' OR sealed IS NULL)
);
-- Delivery claims due letters, earliest first, from this partial index.
CREATE INDEX letters_due ON letters (next_attempt_at) WHERE status = 'queued';
-- Operators' lookups and erasure.
CREATE INDEX letters_by_recipient ON letters (recipient);
CREATE INDEX letters_by_cabinet ON letters (cabinet_id) WHERE cabinet_id IS NOT NULL;
-- Purging settled letters.
CREATE INDEX letters_kept ON letters (keep_until) WHERE keep_until IS NOT NULL;

-- Residents' events (the audit trail of the journeys): never an email, a password, a
-- token or a link. The account number and cabinet go with the resident's erasure.
CREATE TABLE events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    cabinet        BYTEA CHECK (octet_length(cabinet) = 16),
    account_number TEXT,
    client         TEXT CHECK (length(client) <= 64)
);
CREATE INDEX events_by_cabinet ON events (cabinet, at) WHERE cabinet IS NOT NULL;
CREATE INDEX events_by_account ON events (account_number) WHERE account_number IS NOT NULL;
