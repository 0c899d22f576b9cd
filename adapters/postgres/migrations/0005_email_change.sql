-- Journey 12 (docs/contract.md §3): links that change a cabinet's email, and links that
-- cancel such a change.
ALTER TABLE links DROP CONSTRAINT links_purpose_check;
ALTER TABLE links ADD CONSTRAINT links_purpose_check
    CHECK (purpose IN ('confirmation', 'activation', 'recovery', 'email_change', 'email_change_cancel'));
