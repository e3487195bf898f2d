-- 0003: holds that grow and learn (issue 13).
--
-- A hold is estimate_nanos + extended_nanos while pending: Extend adds to
-- extended_nanos, and the sweep, Release and Commit take both off the
-- pending totals. Rows written before this version have extended 0, no
-- base estimate, no calibration key and no usage, as a reservation that
-- was never extended nor calibrated.
ALTER TABLE reservations ADD COLUMN extended_nanos INTEGER NOT NULL DEFAULT 0 CHECK (extended_nanos >= 0);
-- How many extensions it has, so the MaxExtensions bound costs no count.
ALTER TABLE reservations ADD COLUMN extensions INTEGER NOT NULL DEFAULT 0;
-- The uncalibrated estimate and the calibration key it was scaled under,
-- so a commit on any host after any restart can teach calibration.
ALTER TABLE reservations ADD COLUMN base_estimate_nanos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reservations ADD COLUMN calibration_key TEXT NOT NULL DEFAULT '';
-- What the commit was priced from. usage_model is NULL when the commit
-- carried no usage (a usage without a model stores ''); the token
-- columns are then NULL too.
ALTER TABLE reservations ADD COLUMN usage_model TEXT;
ALTER TABLE reservations ADD COLUMN input_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN output_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN cache_read_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE reservations ADD COLUMN price_source TEXT NOT NULL DEFAULT '';

-- Every extension of a hold, so a retried Extend (same id) is answered
-- and never applied twice. Rows are forgotten with their reservation.
CREATE TABLE reservation_extensions (
    reservation_id TEXT    NOT NULL,
    extension_id   TEXT    NOT NULL,
    add_nanos      INTEGER NOT NULL CHECK (add_nanos > 0),
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, extension_id)
) STRICT, WITHOUT ROWID;

-- What calibration learned, by key; values are opaque to the store
-- (enforcer.CalibrationStore).
CREATE TABLE calibration (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
