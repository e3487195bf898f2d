package postgres

// QueuedWrites is how many operations wait in the writers' queues (tests
// use it to put two operations in one batch).
func QueuedWrites(l *Ledger) int {
	n := 0
	for _, q := range l.w.queues {
		n += len(q)
	}
	return n
}
