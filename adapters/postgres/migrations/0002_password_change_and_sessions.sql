-- Temporary mailed passwords (journey 8): when set, the password works until then and
-- until the resident chooses one. Milliseconds since the Unix epoch, as elsewhere.
ALTER TABLE cabinets ADD COLUMN password_expires_at BIGINT;
