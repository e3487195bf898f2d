package enforcer

import "sync"

// inflightIDs are the reservation ids this process is executing. The
// ledger lookup in retried cannot see an attempt that has not reserved
// yet, and a ledger answers a concurrent Reserve of the same id as a
// retry of a hold it cannot tell apart from a fresh one; claiming the id
// first keeps two goroutines from both running the tool. It holds one
// entry per Execute in progress, so it is bounded by the caller's
// concurrency.
type inflightIDs struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func newInflightIDs() *inflightIDs { return &inflightIDs{ids: map[string]struct{}{}} }

// claim reports whether id was free and is now held by the caller.
func (f *inflightIDs) claim(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, busy := f.ids[id]; busy {
		return false
	}
	f.ids[id] = struct{}{}
	return true
}

func (f *inflightIDs) done(id string) {
	f.mu.Lock()
	delete(f.ids, id)
	f.mu.Unlock()
}
