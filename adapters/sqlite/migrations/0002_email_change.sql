-- Journey 12 (docs/contract.md §3): links that change a cabinet's email, and links that
-- cancel such a change. SQLite cannot alter a CHECK constraint: the table is rebuilt
-- (nothing references it), its rows and indexes kept.
CREATE TABLE resident_auth_links_new (
    token_hash         BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    purpose            TEXT NOT NULL CHECK (purpose IN ('confirmation', 'activation', 'recovery', 'email_change', 'email_change_cancel')),
    email              TEXT NOT NULL,
    account_number     TEXT CHECK (length(account_number) = 13 AND account_number NOT GLOB '*[^0-9]*'),
    cabinet_id         BLOB REFERENCES resident_auth_cabinets (id) ON DELETE CASCADE,
    credential_version INTEGER,
    expires_at         INTEGER NOT NULL,
    issuing_until      INTEGER,
    version            INTEGER NOT NULL
) STRICT;
INSERT INTO resident_auth_links_new
    SELECT token_hash, purpose, email, account_number, cabinet_id, credential_version,
           expires_at, issuing_until, version
      FROM resident_auth_links;
DROP TABLE resident_auth_links;
ALTER TABLE resident_auth_links_new RENAME TO resident_auth_links;
CREATE INDEX resident_auth_links_by_expiry ON resident_auth_links (expires_at);
CREATE INDEX resident_auth_links_by_cabinet ON resident_auth_links (cabinet_id) WHERE cabinet_id IS NOT NULL;
CREATE INDEX resident_auth_links_by_email ON resident_auth_links (email);
CREATE INDEX resident_auth_links_by_account ON resident_auth_links (account_number) WHERE account_number IS NOT NULL;
