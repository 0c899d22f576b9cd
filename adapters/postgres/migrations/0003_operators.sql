-- The operators' lookups (README, "Operating it"): pending links by email and by account.
CREATE INDEX links_by_email ON links (email);
CREATE INDEX links_by_account ON links (account_number) WHERE account_number IS NOT NULL;

-- Operator actions: who did what to which cabinet, when. No email, no account number, no
-- secret: the record outlives an erasure without personal data.
CREATE TABLE audit (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    operator TEXT NOT NULL CHECK (length(operator) BETWEEN 1 AND 256),
    action   TEXT NOT NULL,
    cabinet  BYTEA CHECK (octet_length(cabinet) = 16),
    changed  BIGINT NOT NULL
);
CREATE INDEX audit_by_cabinet ON audit (cabinet, at);
