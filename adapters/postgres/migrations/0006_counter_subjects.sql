-- Counters keep their subject apart (resident_auth::ports::CounterKey): the operators'
-- lookups find a subject's counters by equality through an index, instead of matching the
-- end of every key. Existing rows get the subject their key was written with: for the
-- per-client families the whole rest of the key (an IPv6 client holds colons), for every
-- other family the part after the last colon (an email, an account number, a cabinet).
ALTER TABLE counters ADD COLUMN subject TEXT;
UPDATE counters SET subject = CASE
    WHEN key LIKE 'login:client:%' THEN substr(key, length('login:client:') + 1)
    WHEN key LIKE 'registration:client:%' THEN substr(key, length('registration:client:') + 1)
    ELSE regexp_replace(key, '^.*:', '')
END;
ALTER TABLE counters ALTER COLUMN subject SET NOT NULL;
ALTER TABLE counters ADD CONSTRAINT counters_key_ends_with_subject
    CHECK (length(key) > length(subject) + 1 AND right(key, length(subject) + 1) = ':' || subject);
CREATE INDEX counters_subject ON counters (subject);
