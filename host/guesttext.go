package host

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// safeText makes guest text (a log line, a reason, an error message) safe
// to print and to hand to a caller: valid UTF-8 (each invalid byte becomes
// U+FFFD), one line (control characters, line and paragraph separators
// and bidirectional overrides are escaped as \n, \r, \t, \xNN or \uNNNN),
// and at most limitBytes bytes, cut on a character boundary with "…".
// Printable ASCII within the bound is returned as it is, without copying
// more than the string conversion.
func safeText(b []byte, limitBytes int) string {
	if isPlainASCII(b) && len(b) <= limitBytes {
		return string(b)
	}
	out := make([]byte, 0, min(len(b)+16, limitBytes+8))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		mark := len(out)
		out = appendSafeRune(out, r, size)
		b = b[size:]
		// mark <= limitBytes-3 holds whenever more text followed it.
		if len(out) > limitBytes || (len(b) > 0 && len(out) > limitBytes-len("…")) {
			return string(append(out[:mark], "…"...))
		}
	}
	return string(out)
}

func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// appendSafeRune appends r (decoded from size bytes) or its escape.
func appendSafeRune(out []byte, r rune, size int) []byte {
	switch {
	case r == utf8.RuneError && size == 1:
		return append(out, "\uFFFD"...)
	case r == '\n':
		return append(out, `\n`...)
	case r == '\r':
		return append(out, `\r`...)
	case r == '\t':
		return append(out, `\t`...)
	case r < 0x20 || r == 0x7f:
		out = append(out, `\x`...)
		return appendHex(out, uint32(r), 2)
	case r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
		out = append(out, `\u`...)
		return appendHex(out, uint32(r), 4)
	}
	return utf8.AppendRune(out, r)
}

func appendHex(out []byte, v uint32, digits int) []byte {
	s := strconv.FormatUint(uint64(v), 16)
	for i := len(s); i < digits; i++ {
		out = append(out, '0')
	}
	return append(out, s...)
}

// logLimiter is one plugin's token bucket for log lines, shared by all its
// instances and versions, with a count of the lines it dropped.
type logLimiter struct {
	mu       sync.Mutex
	rate     float64 // tokens per second, and the burst
	tokens   float64
	last     time.Time
	dropped  uint64 // ever
	unshown  uint64 // dropped since the last line that got through
	lastRate int
}

// allow takes a token at now; it returns false when the line must be
// dropped, and otherwise how many lines were dropped since the last one
// allowed (to be reported with it).
func (l *logLimiter) allow(now time.Time, perSecond int) (ok bool, droppedBefore uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if perSecond != l.lastRate || l.last.IsZero() {
		l.rate, l.tokens, l.lastRate = float64(perSecond), float64(perSecond), perSecond
	} else if dt := now.Sub(l.last).Seconds(); dt > 0 {
		l.tokens = min(l.rate, l.tokens+dt*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		l.unshown++
		return false, 0
	}
	l.tokens--
	droppedBefore, l.unshown = l.unshown, 0
	return true, droppedBefore
}

// Dropped is how many lines the limiter dropped.
func (l *logLimiter) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// logLimiter returns the bucket of the plugin named name, creating it.
func (h *Host) logLimiter(name string) *logLimiter {
	if l, ok := h.logLimiters.Load(name); ok {
		return l.(*logLimiter)
	}
	l, _ := h.logLimiters.LoadOrStore(name, &logLimiter{})
	return l.(*logLimiter)
}

// safeBytes is safeText as a new byte slice (a copy even when b is safe).
func safeBytes(b []byte, limitBytes int) []byte {
	if isPlainASCII(b) && len(b) <= limitBytes {
		return append([]byte(nil), b...)
	}
	return []byte(safeText(b, limitBytes))
}
