// Package sqlite is the durable embedded enforcer.Ledger: one SQLite file,
// the same semantics as enforcer.MemoryLedger, checked by the same
// conformance suite (enforcer/ledgertest).
//
// # Driver
//
// modernc.org/sqlite: SQLite translated to pure Go, so no cgo and `go test
// ./...` needs only Go installed; it is well maintained and tracks upstream
// SQLite releases.
//
// # Durability
//
// The file is in WAL mode with synchronous=FULL by default: every
// transaction is fsynced to the WAL before Reserve, Commit, Release or an
// account change returns, so an acknowledged charge survives kill -9 of the
// process and also a power loss or kernel crash. WithSynchronous(SyncNormal)
// trades the power-loss guarantee for speed: in WAL mode NORMAL still
// writes every commit to the WAL file (the OS page cache) before returning,
// so it survives the process being killed, but the last transactions can be
// lost if the machine itself goes down.
//
// # Writers
//
// SQLite has one writer at a time. All writes go through one goroutine that
// owns the only write connection, so no caller ever sees SQLITE_BUSY. That
// goroutine commits in groups: whatever requests queued up while the
// previous transaction was being fsynced run together in one BEGIN
// IMMEDIATE transaction, each inside its own SAVEPOINT (a refused or failed
// request rolls back to it and does not disturb the others), and every
// caller gets its result only after the COMMIT is durable. A lone request
// costs one transaction as before; under load one fsync is shared by many.
// Reads (Snapshot, Accounts, Check, Reservation, Reservations) use a
// separate pool of read-only connections with prepared statements and
// never wait for the writer (WAL readers see the last committed state).
//
// Every check reads the account rows inside the write transaction, so a
// second process opening the same file stays correct: BEGIN IMMEDIATE and
// the busy timeout (WithBusyTimeout) serialise the two writers. Sharing a
// budget across machines is store/postgres's job, not this package's.
//
// # Totals and expiry
//
// Every account row carries committed and pending totals for itself and its
// descendants, updated in the same transaction as the reservation row, so a
// budget check reads the O(depth) rows of the account's path, not its
// reservations. Expiry is measured with the injected Clock at each
// operation:
//
//   - each write first sweeps holds whose expires_at <= now (a probe of a
//     partial index on pending holds by expiry finds none in the common
//     case), marking them expired and taking them off every total on their
//     path, so a write always decides on exact totals;
//   - reads cannot write, so they subtract overdue but unswept holds (the same partial index, rolled up the account tree)
//     from the pending totals they return. There are only as many of those
//     as expired since the last write.
//
// Sweep (and Open, at startup) sweeps the same way and also forgets
// reservations settled longer than RetainSettled ago, with their
// extensions.
//
// # Extensions
//
// A hold is estimate_nanos + extended_nanos. Extend is one write like
// Reserve, in the same batches: it checks the added amount against the
// path's totals inside the write transaction, then records the extension
// (reservation_extensions, keyed by reservation and extension id, so a
// retry is answered from it and never applied twice), grows the hold and
// adds to the pending totals. Commit, Release and expiry take the whole
// hold off the totals; a commit without an actual charges it.
//
// # Calibration
//
// MergeCalibration keeps what calibration learned in the calibration
// table: one write (all keys of a call in one transaction, so each key's
// read-merge-write is atomic, also against another process on the file),
// then every value read from the read pool. At most
// enforcer.MaxCalibrationKeys keys of at most
// enforcer.MaxCalibrationValueBytes each: about 40 MiB at the very most.
//
// # Alerts
//
// Threshold and overdraft alerts are computed from an account's committed
// spend and limit before and after a change (the level crossed is a pure
// function of the two, so nothing needs storing) and delivered to the
// Notifier by the calling goroutine after the transaction has committed,
// never inside it.
//
// # A full disk
//
// Every database failure (disk full, I/O error, a write after Close)
// wraps enforcer.ErrLedgerUnavailable. When a write fails for the
// database's own reasons the writer rolls back whatever SQLite left open
// (replacing the connection if even that fails) and, before the next
// batch, checkpoints the WAL into the database and truncates it. On a full
// disk the WAL holds frames that could not be checkpointed because the
// database file could not grow; without the truncate it would regrow into
// any space freed and the disk would be full again at once. Open does the
// same first, and opens even when its sweep cannot write. Reads go on
// throughout. Ready reports whether the ledger can write; while writes
// fail it probes with a 64 KiB write (migration 0002's write_probe row),
// one probe at a time, so readiness returns without traffic.
//
// # Usage
//
//	l, err := sqlite.Open(ctx, "purser-data/ledger.db", enforcer.LedgerOptions{Notifier: n})
//	if err != nil { ... }
//	defer l.Close()
//
// Call Sweep periodically (say every minute) to mark expired holds and
// forget settled reservations older than RetainSettled; correctness does
// not depend on it, the file's size does.
//
// # Schema
//
// Migrations are embedded SQL files (migrations/NNNN_name.sql), applied in
// order in one transaction at Open and recorded in schema_version. A file
// whose schema is newer than this code is refused (ErrSchemaTooNew).
package sqlite
