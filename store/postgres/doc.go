// Package postgres is the shared enforcer.Ledger: one PostgreSQL database
// that every purser host of a team draws from, with the same semantics as
// enforcer.MemoryLedger and store/sqlite, checked by the same conformance
// suite (enforcer/ledgertest). Driver: github.com/jackc/pgx/v5 (pgxpool).
//
// # Locking: one lock per tree, taken first
//
// Accounts form trees (a root and its descendants). A hold or a charge
// updates the totals of the account and every ancestor, so every write to
// a tree updates its root row anyway: writes to one tree are serialized by
// the database whatever we do. The ledger makes that explicit: every write
// transaction first locks the root row of each tree it touches (SELECT ...
// FOR NO KEY UPDATE, several roots in id order), and only then reads or
// writes other rows of those trees. Holding the root means no other writer
// holds anything in the tree, so the other rows can be touched in any
// order, and two transactions can never wait on each other in a cycle: no
// deadlock between reservations, commits, limit changes or account
// creation. Independent trees never contend. Reads (Check, Snapshot,
// Reservation) take no locks: each is one statement, hence one consistent
// MVCC snapshot.
//
// Inside the lock, the budget check and the hold are one decision: the
// path's totals are read after the lock was granted, so concurrent
// reservations from any number of hosts admit exactly what fits (all or
// nothing across the account and every ancestor).
//
// # Batches: one round trip, one transaction per many operations
//
// Reserve, Extend, Commit and Release are queued per process and run in batches:
// a writer goroutine takes everything queued (up to WithMaxBatch) and calls
// the SQL function purser_apply once, which locks the batch's trees, runs
// each operation in order and writes each touched account's totals back
// once. Refusals (insufficient budget, unknown ids, conflicts) are per
// operation statuses, so one refused operation does not undo the others;
// a reserve whose id an earlier operation of the same batch inserted is
// answered as a retry of it (compared field by field, fingerprint
// included). If the statement fails with a server error about one
// operation, each operation is retried alone, within the same deadline, so
// only the faulty one fails; a timeout or a lost connection fails the batch
// at once. Every caller waits at most its own deadline (its context's,
// capped by WithOpTimeout): a batch runs until the latest deadline of its
// callers, and a caller who leaves before its operation was sent is told
// nothing changed. Operations are routed to
// writers by tree, so a hot tree's operations from one process share
// batches instead of queueing behind each other on its lock: the root row
// is locked, written and flushed to the WAL once per batch, which is what
// lets one hot account take thousands of operations a second. A writer
// sends as soon as it has something (a lone operation is a batch of one);
// WithLinger makes it wait briefly for more under concurrent load.
//
// # Extensions and what a commit records
//
// Extend is one more kind of batched operation: under the tree lock it
// checks the added amount against the hold's path exactly as a reserve
// checks its estimate, adds it to the reservation's extended_nanos and to
// every level's pending total, and stores the extension under its
// caller-chosen id in reservation_extensions (forgotten with its
// reservation), which is what makes a retry, or the lookup after a lost
// answer, find it. A hold is estimate_nanos + extended_nanos wherever a
// total is updated (commit, release, expiry) or discounted (reads of
// overdue holds). Reservations also record the reserve's base estimate and
// calibration key and the commit's token usage and price source.
//
// # Calibration
//
// MergeCalibration keeps enforcer calibration in the calibration table,
// shared by every host: one transaction locks the delta keys' rows in key
// order (FOR UPDATE), merges and writes them, inserts new keys with ON
// CONFLICT DO NOTHING (under an advisory lock that keeps the key bound
// exact across hosts) and merges onto a key another host inserted first.
//
// # Time
//
// With no Clock in enforcer.LedgerOptions (the server's default) every
// instant is the database's clock_timestamp(), read after the tree lock was
// granted: hosts whose clocks disagree still agree on when a hold expires,
// and successive writers of a tree see increasing times. With a Clock (the
// conformance suite injects a fake one) that clock is used instead; only
// use one with a single host or tightly synchronized clocks. Instants are
// stored as BIGINT Unix nanoseconds, money as BIGINT nano-USD.
//
// # Expiry
//
// Every write to a tree first expires the tree's holds that are past their
// expiry (one probe of a partial index on pending holds finds none in the
// common case), so writes decide on exact totals. Reads subtract the
// estimates of overdue holds not yet expired. Sweep expires the holds of
// trees nobody writes to and forgets reservations settled longer than
// RetainSettled ago (skipping rows a commit has locked, so it never waits
// on or deadlocks with a batch).
//
// # Alerts across hosts
//
// A commit returns, for every account it charged, the committed total just
// after it, read under the tree lock. The threshold level is a pure function
// of (committed, limit), so the one commit that moved the total across a
// threshold sees old and new levels differ and raises the alert; the
// commits on either side of it, on whatever host, see no change. Each
// crossing is therefore reported once however many hosts commit at the
// same moment, and re-arms when a limit change lowers the level. Alerts go
// to the Notifier after the transaction committed, never inside it. (If
// the connection dies between COMMIT and its answer, that commit's alert is
// lost: alerts are at most once.)
//
// # Retries and failures
//
// PostgreSQL aborts a transaction with serialization_failure or
// deadlock_detected only in cases the lock order rules out, but should it
// happen the batch (or account change) is retried with jittered
// exponential backoff (WithRetries, default 10), so it does not reach a
// client. A statement that never reached the server is retried once (a
// pooled connection closed by a failover), and after any connection-level
// failure the pool's connections are dropped (after a restart they are all
// dead); a read is sent once more on a fresh one. Anything else that shows
// the database cannot be reached — connection refused or lost, timeouts
// (WithOpTimeout, WithStatementTimeout), a server shutting down, starting
// or read-only after a failover — wraps ErrUnavailable (which wraps
// enforcer.ErrLedgerUnavailable): the ledger fails closed and the caller
// gets an error naming the database.
//
// A failure after a write was sent and before its answer came back leaves
// the outcome unknown: the transaction may have committed. Reserve then
// looks the id up (within the caller's deadline), and Extend its extension
// id: a hold with the request's fields (or the extension with its amount)
// is the answer, none means nothing is held (or added), and a
// failed lookup is an *OutcomeUnknownError (still ErrUnavailable) saying
// the hold may exist. FailOpen wraps a Ledger with a bounded alternative
// (an fsynced local journal keeps the charges it acknowledges); see
// DEPLOYMENT.md for choosing.
//
// # Schema
//
// Migrations are embedded SQL files (migrations/NNNN_name.sql) applied in
// order at Open, each in its own transaction with its version row, while
// holding a session advisory lock derived from the schema name: when
// several hosts start together one migrates and the others wait, then find
// nothing to do. A database whose schema is newer than this code is
// refused (ErrSchemaTooNew). WithSchema keeps the tables in a named schema
// (the tests use a fresh one each).
package postgres
