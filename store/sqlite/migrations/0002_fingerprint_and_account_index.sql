-- 0002: reservation fingerprints and listing by account (issue 11).
--
-- fingerprint is the caller's opaque digest of everything else it asked
-- for (params, an explicit estimate, the requested TTL), compared on a
-- retry like the other fields; '' for rows written before it existed,
-- which compare equal only to a request without one.
ALTER TABLE reservations ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';

-- Ledger.Reservations: one account's reservations, oldest first.
CREATE INDEX reservations_account ON reservations (account_id, created_at, id);
