-- Counters keep their subject apart (resident_auth::ports::CounterKey): the operators'
-- lookups find a subject's counters by equality through an index, instead of matching the
-- end of every key. Existing rows get the subject their key was written with: for the
-- per-client families the whole rest of the key (an IPv6 client holds colons), for every
-- other family the part after the last colon (an email, an account number, a cabinet;
-- `rtrim(key, <every character but ':'>)` is the key up to its last colon). SQLite cannot
-- add a CHECK to a table: the table is rebuilt (nothing references it).
CREATE TABLE resident_auth_counters_new (
    key         TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    window_ends INTEGER NOT NULL,
    CHECK (length(key) > length(subject) + 1 AND substr(key, -length(subject) - 1) = ':' || subject)
) STRICT;
INSERT INTO resident_auth_counters_new (key, subject, count, window_ends)
    SELECT key,
           CASE
               WHEN key LIKE 'login:client:%' THEN substr(key, length('login:client:') + 1)
               WHEN key LIKE 'registration:client:%' THEN substr(key, length('registration:client:') + 1)
               ELSE substr(key, length(rtrim(key, replace(key, ':', ''))) + 1)
           END,
           count, window_ends
      FROM resident_auth_counters;
DROP TABLE resident_auth_counters;
ALTER TABLE resident_auth_counters_new RENAME TO resident_auth_counters;
CREATE INDEX resident_auth_counters_subject ON resident_auth_counters (subject);
CREATE INDEX resident_auth_counters_by_window ON resident_auth_counters (window_ends);
