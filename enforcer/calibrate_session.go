package enforcer

import "time"

// sessionCall is what a session's last settled LLM call left behind.
type sessionCall struct {
	promptTokens int64
	at           time.Time
}

// maxPending bounds the bases kept for holds whose ledger does not record
// BaseEstimate (one per pending calibrated hold; the oldest is dropped).
const maxPending = 4096

type pendingBase struct {
	key  string
	base Nanos
}

// fifoMap is a map bounded to max entries: the key inserted longest ago is
// forgotten first (deterministic, unlike evicting by map order).
type fifoMap[V any] struct {
	max   int
	items map[string]V
	order []string // ring of keys in insertion order
	next  int
}

func newFIFOMap[V any](max int) fifoMap[V] {
	return fifoMap[V]{max: max, items: map[string]V{}}
}

func (m *fifoMap[V]) get(k string) (V, bool) {
	v, ok := m.items[k]
	return v, ok
}

func (m *fifoMap[V]) put(k string, v V) {
	if m.max <= 0 {
		return
	}
	if _, ok := m.items[k]; !ok {
		if len(m.order) < m.max {
			m.order = append(m.order, k)
		} else {
			delete(m.items, m.order[m.next])
			m.order[m.next] = k
			m.next = (m.next + 1) % m.max
		}
	}
	m.items[k] = v
}

// take removes and returns k's value. Its slot in the ring stays until
// overwritten (evicting a key that is gone is harmless), so the map never
// holds more than max entries.
func (m *fifoMap[V]) take(k string) (V, bool) {
	v, ok := m.items[k]
	delete(m.items, k)
	return v, ok
}
