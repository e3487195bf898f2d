-- 0003: holds that grow (Extend), what a commit was priced from, and
-- calibration shared by every host (issue 13).
--
-- * reservations.extended_nanos is what Extend added to the hold: a pending
--   reservation holds estimate_nanos + extended_nanos on its path, and a
--   commit, release or expiry takes that sum off. extension_count bounds
--   the extensions per reservation. Rows written before this migration have
--   0 of both (nothing was ever extended).
-- * reservation_extensions remembers each extension by its caller-chosen id
--   with its amount, so a retry is recognised (same amount: the reservation
--   as it is now; another amount: a conflict). It is forgotten with its
--   reservation (ON DELETE CASCADE: Sweep deletes only reservations).
-- * base_estimate_nanos and calibration_key are the reserve's, recorded so
--   a commit on any host can teach calibration; price_source and the usage_*
--   columns are the commit's (usage_model NULL: the commit carried no usage).
-- * calibration holds what calibration learned, one opaque value per key,
--   merged by every host under a row lock (see MergeCalibration).
-- * purser_apply takes the new fields and a new kind, 'extend'.

ALTER TABLE reservations
    ADD COLUMN extended_nanos BIGINT NOT NULL DEFAULT 0 CHECK (extended_nanos >= 0),
    ADD COLUMN extension_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN base_estimate_nanos BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN calibration_key TEXT NOT NULL DEFAULT '',
    ADD COLUMN price_source TEXT NOT NULL DEFAULT '',
    ADD COLUMN usage_model TEXT,
    ADD COLUMN usage_input_tokens BIGINT,
    ADD COLUMN usage_output_tokens BIGINT,
    ADD COLUMN usage_cache_read_tokens BIGINT,
    ADD COLUMN usage_cache_write_tokens BIGINT,
    ADD COLUMN usage_cache_write_1h_tokens BIGINT;

CREATE TABLE reservation_extensions (
    reservation_id TEXT   NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    extension_id   TEXT   NOT NULL,
    add_nanos      BIGINT NOT NULL CHECK (add_nanos > 0),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (reservation_id, extension_id)
);

CREATE TABLE calibration (
    key        TEXT        NOT NULL PRIMARY KEY,
    value      BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Expiry takes the whole hold (estimate and extensions) off the path.
CREATE OR REPLACE FUNCTION purser_expire_tree(p_root TEXT, p_now BIGINT) RETURNS INT LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n INT;
BEGIN
    PERFORM 1 FROM reservations WHERE root_id = p_root AND state = 'pending' AND expires_at <= p_now LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        UPDATE reservations SET state = 'expired', settled_at = expires_at
        WHERE root_id = p_root AND state = 'pending' AND expires_at <= p_now
        RETURNING path, estimate_nanos + extended_nanos AS held
    ), totals AS (
        SELECT p.id, sum(g.held)::BIGINT AS total
        FROM gone g CROSS JOIN LATERAL unnest(g.path) AS p(id)
        GROUP BY p.id
    ), upd AS (
        UPDATE accounts a SET pending_nanos = a.pending_nanos - t.total FROM totals t WHERE a.id = t.id RETURNING 1
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;

DROP FUNCTION purser_apply(BIGINT, TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[]);

-- purser_apply runs a batch of reserve, extend, commit and release
-- operations in one transaction (the caller's statement) and returns one
-- row per operation, in order. Refusals are statuses, not exceptions, so
-- one refused operation does not undo the others:
--
--   ok                 done; r_* is the reservation now
--   exists             reserve/charge: the id exists; r_* is that reservation (same or conflicting fields)
--   ext_exists         extend: the extension id exists with amount e_amount; r_* is the reservation now
--   account_not_found  reserve: no such account
--   not_found          commit/release/extend: no such reservation
--   settled            commit/release/extend: r_* is already settled (commit may be an idempotent repeat)
--   too_many           extend: the reservation has p_max_ext extensions already
--   denied             reserve/extend: d_* is the tightest account (InsufficientBudgetError)
--   overflow           a total on d_account (or the hold itself) would pass 2^63-1
--
-- A charge (kind 'charge') records a cost incurred while the database was
-- unreachable: a committed reservation, charged without a budget check.
--
-- r_root is the reservation's tree (its root account), which the caller
-- routes the tree's later operations by.
--
-- For a commit or charge, a_* list the accounts charged with their new committed
-- totals and limits, from which the caller derives threshold alerts: the
-- rows were updated under the tree lock, so each crossing is seen by
-- exactly one transaction even when several hosts commit at once.
--
-- p_amount is the estimate for a reserve, the amount to add for an extend,
-- the actual cost for a commit (NULL: the whole hold, estimate + extended).
-- p_ttl is in nanoseconds. p_extended is what a charge's hold had grown
-- by; p_base and p_calkey are a reserve's (or charge's) base estimate and
-- calibration key; p_ext an extend's id;
-- p_price a commit's (or charge's) price source and p_umodel its usage's
-- model (NULL: no usage), whose five token counts are p_usage[5i-4 .. 5i]
-- (input, output, cache read, cache write, cache write 1h).
CREATE FUNCTION purser_apply(
    p_now BIGINT, p_kind TEXT[], p_id TEXT[], p_account TEXT[], p_tool TEXT[],
    p_amount BIGINT[], p_ttl BIGINT[], p_source TEXT[], p_fp TEXT[], p_estimate BIGINT[],
    p_extended BIGINT[], p_base BIGINT[], p_calkey TEXT[], p_ext TEXT[], p_price TEXT[], p_umodel TEXT[], p_usage BIGINT[],
    p_max_ext INT)
RETURNS TABLE (
    op INT, status TEXT, now_ns BIGINT,
    r_id TEXT, r_account TEXT, r_tool TEXT, r_estimate BIGINT, r_ttl BIGINT, r_state TEXT,
    r_created BIGINT, r_expires BIGINT, r_settled BIGINT, r_charged BIGINT, r_source TEXT, r_late BOOLEAN, r_fp TEXT,
    r_extended BIGINT, r_base BIGINT, r_calkey TEXT, r_price TEXT, r_umodel TEXT, r_usage BIGINT[], r_root TEXT, e_amount BIGINT,
    d_account TEXT, d_remaining BIGINT, d_overdrawn BOOLEAN,
    a_ids TEXT[], a_committed BIGINT[], a_limits BIGINT[])
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    max_nanos CONSTANT NUMERIC := 9223372036854775807;
    min_nanos CONSTANT NUMERIC := -9223372036854775808;
    v_roots TEXT[];
    v_root TEXT;
    v_path TEXT[];
    v_now BIGINT;
    v_rem BIGINT;
    v_charge BIGINT;
    v_release BIGINT;
    v_over TEXT;
    v_done BOOLEAN;
    v_check BOOLEAN;
    v_u INT;
    v_existing TEXT[];
    r reservations%ROWTYPE;
    j INT;
    k INT;
    -- The totals of every account this batch touches, read once after the
    -- trees are locked, kept up to date here operation by operation, and
    -- written back once at the end: one new row version per account per
    -- batch, however many operations hit it (a hot root would otherwise
    -- grow a chain of versions that every later operation walks).
    acc_ids TEXT[];
    acc_lim BIGINT[];
    acc_c BIGINT[];
    acc_p BIGINT[];
    acc_c0 BIGINT[];
    acc_p0 BIGINT[];
    -- Per-tool stats to add, likewise written once.
    t_acct TEXT[] := '{}';
    t_tool TEXT[] := '{}';
    t_calls BIGINT[] := '{}';
    t_spent BIGINT[] := '{}';
BEGIN
    SELECT array_agg(DISTINCT x.root ORDER BY x.root) INTO v_roots FROM (
        SELECT ac.root_id AS root FROM unnest(p_kind, p_account) AS o(kind, acct)
            JOIN accounts ac ON ac.id = o.acct WHERE o.kind IN ('reserve', 'charge')
        UNION ALL
        SELECT rs.root_id FROM unnest(p_kind, p_id) AS o(kind, id)
            JOIN reservations rs ON rs.id = o.id WHERE o.kind NOT IN ('reserve', 'charge')
    ) x;
    v_roots := COALESCE(v_roots, '{}');
    -- Lock the trees in id order (spelled out, not a call of
    -- purser_lock_trees: a SQL function is planned again on every call).
    PERFORM 1 FROM (SELECT 1 FROM accounts WHERE id = ANY(v_roots) ORDER BY id FOR NO KEY UPDATE) locked;
    v_now := COALESCE(p_now, (extract(epoch FROM clock_timestamp()) * 1000000000)::BIGINT);
    -- Expire overdue holds, probing first: usually there are none.
    FOR v_root IN SELECT DISTINCT rs.root_id FROM reservations rs
            WHERE rs.root_id = ANY(v_roots) AND rs.state = 'pending' AND rs.expires_at <= v_now LOOP
        PERFORM purser_expire_tree(v_root, v_now);
    END LOOP;
    SELECT array_agg(x.id), array_agg(x.limit_nanos), array_agg(x.committed_nanos), array_agg(x.pending_nanos)
        INTO acc_ids, acc_lim, acc_c, acc_p
        FROM accounts x
        WHERE x.root_id = ANY(v_roots) AND x.id IN (
            SELECT unnest(ac.path) FROM unnest(p_kind, p_account) AS o(kind, acct)
                JOIN accounts ac ON ac.id = o.acct WHERE o.kind IN ('reserve', 'charge')
            UNION
            SELECT unnest(rs.path) FROM unnest(p_kind, p_id) AS o(kind, id)
                JOIN reservations rs ON rs.id = o.id WHERE o.kind NOT IN ('reserve', 'charge'));
    acc_ids := COALESCE(acc_ids, '{}'); acc_lim := COALESCE(acc_lim, '{}');
    acc_c := COALESCE(acc_c, '{}'); acc_p := COALESCE(acc_p, '{}');
    acc_c0 := acc_c; acc_p0 := acc_p;
    -- Ids of the batch's reserves that exist already (usually none), so a
    -- new reservation costs no lookup.
    SELECT array_agg(rs.id) INTO v_existing FROM reservations rs
        WHERE rs.id = ANY(p_id) AND rs.id IN (SELECT o.id FROM unnest(p_kind, p_id) AS o(kind, id) WHERE o.kind IN ('reserve', 'charge'));
    v_existing := COALESCE(v_existing, '{}');

    FOR i IN 1 .. COALESCE(array_length(p_kind, 1), 0) LOOP
        op := i - 1; status := 'ok'; now_ns := v_now;
        r_id := NULL; -- the other r_* are only read when r_id is set
        e_amount := NULL;
        d_account := NULL; d_remaining := NULL; d_overdrawn := NULL;
        a_ids := NULL; a_committed := NULL; a_limits := NULL;
        v_charge := NULL; v_release := 0; v_path := NULL; v_check := false;
        v_u := 5 * (i - 1);

        IF p_kind[i] IN ('reserve', 'charge') THEN
            SELECT ac.root_id, ac.path INTO v_root, v_path FROM accounts ac WHERE ac.id = p_account[i];
            IF NOT FOUND OR NOT (v_root = ANY(v_roots)) OR array_position(acc_ids, p_account[i]) IS NULL THEN
                -- (an account created after this batch began is not visible to it)
                status := 'account_not_found';
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_done := false;
            IF p_id[i] = ANY(v_existing) THEN
                SELECT * INTO r FROM reservations WHERE id = p_id[i];
                v_done := FOUND;
            END IF;
            IF v_done THEN
                status := 'exists';
                v_path := NULL;
            ELSIF p_kind[i] = 'charge' THEN
                -- A charge made while the database was unreachable (fail-open):
                -- recorded as a committed reservation, never refused.
                v_charge := p_amount[i];
                v_over := NULL;
                FOR k IN 1 .. array_length(v_path, 1) LOOP
                    j := array_position(acc_ids, v_path[k]);
                    IF acc_c[j]::NUMERIC + v_charge > max_nanos THEN
                        v_over := v_path[k];
                        EXIT;
                    END IF;
                END LOOP;
                IF v_over IS NOT NULL THEN
                    status := 'overflow'; d_account := v_over;
                    RETURN NEXT;
                    CONTINUE;
                END IF;
                INSERT INTO reservations (id, account_id, root_id, path, tool, estimate_nanos, ttl_nanos, state,
                        created_at, expires_at, settled_at, charged_nanos, cost_source, fingerprint,
                        extended_nanos, base_estimate_nanos, calibration_key, price_source, usage_model,
                        usage_input_tokens, usage_output_tokens, usage_cache_read_tokens, usage_cache_write_tokens,
                        usage_cache_write_1h_tokens)
                    VALUES (p_id[i], p_account[i], v_root, v_path, p_tool[i], COALESCE(p_estimate[i], p_amount[i]), p_ttl[i],
                        'committed', v_now, v_now + p_ttl[i], v_now, p_amount[i], p_source[i], p_fp[i],
                        COALESCE(p_extended[i], 0),
                        COALESCE(p_base[i], 0), COALESCE(p_calkey[i], ''), COALESCE(p_price[i], ''), p_umodel[i],
                        CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 1] END,
                        CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 2] END,
                        CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 3] END,
                        CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 4] END,
                        CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 5] END)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING * INTO r;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'reservation % created during a concurrent charge', p_id[i] USING ERRCODE = '40001';
                END IF;
                v_existing := v_existing || p_id[i];
            ELSE
                v_check := true; -- the budget check below, then the insert
            END IF;
        ELSIF p_kind[i] = 'extend' THEN
            SELECT * INTO r FROM reservations WHERE id = p_id[i];
            IF NOT FOUND OR NOT (r.root_id = ANY(v_roots)) THEN
                status := 'not_found';
                RETURN NEXT;
                CONTINUE;
            END IF;
            -- A known extension id answers first, even once settled: a
            -- retry after a lost reply.
            SELECT x.add_nanos INTO e_amount FROM reservation_extensions x
                WHERE x.reservation_id = p_id[i] AND x.extension_id = p_ext[i];
            IF FOUND THEN
                status := 'ext_exists';
            ELSIF r.state <> 'pending' THEN
                status := 'settled';
            ELSIF r.extension_count >= p_max_ext THEN
                status := 'too_many';
            ELSIF r.estimate_nanos::NUMERIC + r.extended_nanos + p_amount[i] > max_nanos THEN
                status := 'overflow'; d_account := r.account_id;
                RETURN NEXT;
                CONTINUE;
            ELSE
                v_path := r.path;
                v_check := true;
            END IF;
        ELSE
            -- Settle a live hold (or, for a commit, an expired one) in one
            -- statement; only a refusal needs a second look at the row.
            IF p_kind[i] = 'release' THEN
                UPDATE reservations SET state = 'released', settled_at = v_now
                    WHERE id = p_id[i] AND state = 'pending' AND root_id = ANY(v_roots)
                    RETURNING * INTO r;
                v_done := FOUND;
                IF v_done THEN
                    FOR k IN 1 .. array_length(r.path, 1) LOOP
                        j := array_position(acc_ids, r.path[k]);
                        acc_p[j] := acc_p[j] - (r.estimate_nanos + r.extended_nanos);
                    END LOOP;
                END IF;
            ELSE
                UPDATE reservations SET state = 'committed', settled_at = v_now,
                        charged_nanos = COALESCE(p_amount[i], estimate_nanos + extended_nanos), cost_source = p_source[i],
                        late = state <> 'pending', price_source = COALESCE(p_price[i], ''), usage_model = p_umodel[i],
                        usage_input_tokens = CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 1] END,
                        usage_output_tokens = CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 2] END,
                        usage_cache_read_tokens = CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 3] END,
                        usage_cache_write_tokens = CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 4] END,
                        usage_cache_write_1h_tokens = CASE WHEN p_umodel[i] IS NOT NULL THEN p_usage[v_u + 5] END
                    WHERE id = p_id[i] AND state IN ('pending', 'expired') AND root_id = ANY(v_roots)
                    RETURNING * INTO r;
                v_done := FOUND;
                IF v_done THEN
                    v_charge := r.charged_nanos; v_path := r.path;
                    IF NOT r.late THEN
                        v_release := r.estimate_nanos + r.extended_nanos;
                    END IF;
                    v_over := NULL;
                    FOR k IN 1 .. array_length(v_path, 1) LOOP
                        j := array_position(acc_ids, v_path[k]);
                        IF acc_c[j]::NUMERIC + v_charge > max_nanos THEN
                            v_over := v_path[k];
                            EXIT;
                        END IF;
                    END LOOP;
                    IF v_over IS NOT NULL THEN
                        -- Refused: put the reservation back as it was.
                        UPDATE reservations SET state = CASE WHEN late THEN 'expired' ELSE 'pending' END,
                                settled_at = CASE WHEN late THEN expires_at END, charged_nanos = 0, cost_source = '', late = false,
                                price_source = '', usage_model = NULL, usage_input_tokens = NULL, usage_output_tokens = NULL,
                                usage_cache_read_tokens = NULL, usage_cache_write_tokens = NULL, usage_cache_write_1h_tokens = NULL
                            WHERE id = r.id;
                        status := 'overflow'; d_account := v_over;
                        RETURN NEXT;
                        CONTINUE;
                    END IF;
                END IF;
            END IF;
            IF NOT v_done THEN
                SELECT * INTO r FROM reservations WHERE id = p_id[i];
                IF NOT FOUND OR NOT (r.root_id = ANY(v_roots)) THEN
                    status := 'not_found';
                    RETURN NEXT;
                    CONTINUE;
                END IF;
                status := 'settled';
            END IF;
        END IF;

        IF v_check THEN
            -- A new hold or a hold growing by p_amount: the budget check is
            -- the same, the tightest account on the path, an overdrawn one
            -- first (it refuses everything).
            d_account := v_path[1]; d_remaining := max_nanos; d_overdrawn := false; v_over := NULL;
            FOR k IN 1 .. array_length(v_path, 1) LOOP
                j := array_position(acc_ids, v_path[k]);
                IF v_over IS NULL AND acc_p[j]::NUMERIC + p_amount[i] > max_nanos THEN
                    v_over := v_path[k];
                END IF;
                CONTINUE WHEN acc_lim[j] IS NULL;
                v_rem := greatest(acc_lim[j]::NUMERIC - acc_c[j] - acc_p[j], min_nanos)::BIGINT;
                IF acc_c[j] > acc_lim[j] AND NOT d_overdrawn THEN
                    d_account := v_path[k]; d_remaining := v_rem; d_overdrawn := true;
                ELSIF NOT d_overdrawn AND v_rem < d_remaining THEN
                    d_account := v_path[k]; d_remaining := v_rem;
                END IF;
            END LOOP;
            IF d_overdrawn OR p_amount[i] > d_remaining THEN
                status := 'denied';
                RETURN NEXT;
                CONTINUE;
            END IF;
            d_account := NULL; d_remaining := NULL; d_overdrawn := NULL;
            IF v_over IS NOT NULL THEN
                status := 'overflow'; d_account := v_over;
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_done := true;
            IF p_kind[i] = 'extend' THEN
                INSERT INTO reservation_extensions (reservation_id, extension_id, add_nanos, created_at)
                    VALUES (r.id, p_ext[i], p_amount[i], v_now);
                UPDATE reservations SET extended_nanos = extended_nanos + p_amount[i], extension_count = extension_count + 1
                    WHERE id = r.id
                    RETURNING * INTO r;
            ELSE
                INSERT INTO reservations (id, account_id, root_id, path, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at,
                        fingerprint, base_estimate_nanos, calibration_key)
                    VALUES (p_id[i], p_account[i], v_root, v_path, p_tool[i], p_amount[i], p_ttl[i], 'pending', v_now, v_now + p_ttl[i],
                        p_fp[i], COALESCE(p_base[i], 0), COALESCE(p_calkey[i], ''))
                    ON CONFLICT (id) DO NOTHING
                    RETURNING * INTO r;
                v_done := FOUND;
                IF v_done THEN
                    -- A later operation of this batch with the same id is a
                    -- retry: it must find this row, not be budget-checked
                    -- against its own hold.
                    v_existing := v_existing || p_id[i];
                ELSE
                    -- A reserve of the same id on another tree committed first.
                    SELECT * INTO r FROM reservations WHERE id = p_id[i];
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'reservation % vanished during a concurrent reserve', p_id[i] USING ERRCODE = '40001';
                    END IF;
                    status := 'exists';
                END IF;
            END IF;
            IF v_done THEN
                FOR k IN 1 .. array_length(v_path, 1) LOOP
                    j := array_position(acc_ids, v_path[k]);
                    acc_p[j] := acc_p[j] + p_amount[i];
                END LOOP;
            END IF;
            v_path := NULL;
        END IF;

        IF v_charge IS NOT NULL THEN
            -- A commit or charge (which fits, checked above): roll it up.
            a_ids := v_path; a_committed := '{}'; a_limits := '{}';
            FOR k IN 1 .. array_length(v_path, 1) LOOP
                j := array_position(acc_ids, v_path[k]);
                acc_c[j] := acc_c[j] + v_charge;
                acc_p[j] := acc_p[j] - v_release;
                a_committed := a_committed || acc_c[j];
                a_limits := a_limits || acc_lim[j];
                IF r.tool <> '' THEN
                    j := NULL;
                    FOR m IN 1 .. COALESCE(array_length(t_acct, 1), 0) LOOP
                        IF t_acct[m] = v_path[k] AND t_tool[m] = r.tool THEN
                            j := m;
                            EXIT;
                        END IF;
                    END LOOP;
                    IF j IS NULL THEN
                        t_acct := t_acct || v_path[k]; t_tool := t_tool || r.tool;
                        t_calls := t_calls || 1::BIGINT; t_spent := t_spent || v_charge;
                    ELSE
                        t_calls[j] := t_calls[j] + 1; t_spent[j] := t_spent[j] + v_charge;
                    END IF;
                END IF;
            END LOOP;
        END IF;
        r_id := r.id; r_account := r.account_id; r_tool := r.tool; r_estimate := r.estimate_nanos; r_ttl := r.ttl_nanos;
        r_state := r.state; r_created := r.created_at; r_expires := r.expires_at; r_settled := r.settled_at;
        r_charged := r.charged_nanos; r_source := r.cost_source; r_late := r.late; r_fp := r.fingerprint;
        r_extended := r.extended_nanos; r_base := r.base_estimate_nanos; r_calkey := r.calibration_key;
        r_price := r.price_source; r_umodel := r.usage_model; r_root := r.root_id;
        r_usage := CASE WHEN r.usage_model IS NOT NULL THEN ARRAY[r.usage_input_tokens, r.usage_output_tokens,
            r.usage_cache_read_tokens, r.usage_cache_write_tokens, r.usage_cache_write_1h_tokens] END;
        RETURN NEXT;
    END LOOP;

    UPDATE accounts x SET committed_nanos = x.committed_nanos + (d.c - d.c0), pending_nanos = x.pending_nanos + (d.p - d.p0)
        FROM unnest(acc_ids, acc_c, acc_c0, acc_p, acc_p0) AS d(id, c, c0, p, p0)
        WHERE x.id = d.id AND (d.c <> d.c0 OR d.p <> d.p0);
    IF array_length(t_acct, 1) > 0 THEN
        INSERT INTO account_tools (account_id, tool, calls, spent_nanos)
            SELECT * FROM unnest(t_acct, t_tool, t_calls, t_spent)
            ON CONFLICT (account_id, tool) DO UPDATE
            SET calls = account_tools.calls + excluded.calls, spent_nanos = account_tools.spent_nanos + excluded.spent_nanos;
    END IF;
END
$$;
