-- 0001: accounts, per-tool stats and reservations.
--
-- Money is INTEGER nano-USD; instants are INTEGER Unix nanoseconds. STRICT
-- makes SQLite refuse a REAL where an INTEGER belongs, so an arithmetic
-- overflow the Go code failed to catch errors out instead of silently
-- turning into a float. (A PostgreSQL port drops STRICT and WITHOUT ROWID
-- and uses BIGINT.)

CREATE TABLE accounts (
    id                TEXT    NOT NULL PRIMARY KEY,
    parent_id         TEXT    REFERENCES accounts (id),
    limit_nanos       INTEGER CHECK (limit_nanos IS NULL OR limit_nanos >= 0), -- NULL: unlimited
    -- Denormalised totals of the account and all its descendants, kept in
    -- the same transaction as the reservation rows they summarise, so a
    -- budget check reads O(depth) rows. pending_nanos still includes holds
    -- past their expiry until a write sweeps them; readers subtract those.
    committed_nanos   INTEGER NOT NULL DEFAULT 0 CHECK (committed_nanos >= 0),
    pending_nanos     INTEGER NOT NULL DEFAULT 0 CHECK (pending_nanos >= 0),
    allocate_children INTEGER NOT NULL DEFAULT 0, -- supervisor: children's fixed limits fit in ours
    labels            TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
    created_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX accounts_parent ON accounts (parent_id);

-- Committed calls per tool, rolled up: one row per (account, tool) for the
-- account and each ancestor of the account charged.
CREATE TABLE account_tools (
    account_id  TEXT    NOT NULL REFERENCES accounts (id),
    tool        TEXT    NOT NULL,
    calls       INTEGER NOT NULL,
    spent_nanos INTEGER NOT NULL,
    PRIMARY KEY (account_id, tool)
) STRICT, WITHOUT ROWID;

CREATE TABLE reservations (
    id             TEXT    NOT NULL PRIMARY KEY, -- chosen by the caller
    account_id     TEXT    NOT NULL REFERENCES accounts (id),
    tool           TEXT    NOT NULL,
    estimate_nanos INTEGER NOT NULL CHECK (estimate_nanos >= 0),
    ttl_nanos      INTEGER NOT NULL CHECK (ttl_nanos > 0), -- kept to tell a retry from a conflict
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'committed', 'released', 'expired')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    settled_at     INTEGER, -- NULL while pending; expires_at for an expired hold
    charged_nanos  INTEGER NOT NULL DEFAULT 0,
    cost_source    TEXT    NOT NULL DEFAULT '',
    late           INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- Live holds by expiry: finds overdue holds (to sweep or to discount) with
-- one index probe when there are none.
CREATE INDEX reservations_pending_expiry ON reservations (expires_at) WHERE state = 'pending';

-- Settled reservations by settling time, for retention.
CREATE INDEX reservations_settled ON reservations (settled_at) WHERE state <> 'pending';
