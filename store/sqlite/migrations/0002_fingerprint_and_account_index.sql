-- 0002: reservation fingerprints and listing by account (issue 11).
--
-- fingerprint is the caller's opaque digest of everything else it asked
-- for (params, an explicit estimate, the requested TTL), compared on a
-- retry like the other fields; '' for rows written before it existed,
-- which compare equal only to a request without one.
ALTER TABLE reservations ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';

-- Ledger.Reservations: one account's reservations, oldest first.
CREATE INDEX reservations_account ON reservations (account_id, created_at, id);

-- One row rewritten by Ledger.Ready while writes are failing (disk full),
-- to learn whether the database can take a write again. pad makes the
-- probe the size of a real batch (a 64 KiB write), so a few bytes of
-- space do not pass for recovery.
CREATE TABLE write_probe (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL,
    pad BLOB    NOT NULL
) STRICT;
