package host

import (
	"bytes"

	"github.com/hashicorp/go-hclog"
)

// logSink forwards one instance's log import, stdout and stderr to the
// plugin's logger under a per-call byte budget and the plugin's line rate
// (logLimiter), each line made safe (safeText: one line, valid UTF-8,
// bounded), so a guest cannot forge log lines. It needs no lock: an
// instance serves one call at a time, host functions (log, fd_write) run on
// the calling goroutine, and the pool's mutex orders successive callers.
type logSink struct {
	v         *version // the plugin's line limiter, limits and clock
	logger    hclog.Logger
	limit     int
	remaining int
	truncated bool
}

func newLogSink(v *version) *logSink {
	return &logSink{v: v, logger: v.logger, limit: v.limits.LogBytesPerCallMax, remaining: v.limits.LogBytesPerCallMax}
}

// reset starts a new call's budget.
func (s *logSink) reset() { s.remaining, s.truncated = s.limit, false }

// take reserves up to n bytes of budget and returns how many were granted,
// logging the truncation once.
func (s *logSink) take(n int) int {
	if n <= s.remaining {
		s.remaining -= n
		return n
	}
	granted := s.remaining
	s.remaining = 0
	if !s.truncated && s.allow() {
		s.truncated = true
		s.logger.Warn("log output truncated", "limit_bytes", s.limit)
	}
	return granted
}

// allow takes a token from the plugin's line bucket, first reporting the
// lines dropped since the last one that got through.
func (s *logSink) allow() bool {
	ok, dropped := s.v.limiter.allow(s.v.h.now(), s.v.limits.LogLinesPerSecond)
	if ok && dropped > 0 {
		s.logger.Warn("log lines dropped", "dropped", dropped, "limit_lines_per_second", s.v.limits.LogLinesPerSecond)
	}
	return ok
}

// emit logs one guest line, escaped and bounded, unless over the rate.
func (s *logSink) emit(level hclog.Level, msg []byte) {
	if s.allow() {
		s.logger.Log(level, safeText(msg, s.v.limits.LogLineBytesMax))
	}
}

// stream is a guest's stdout or stderr: it logs whole lines.
type stream struct {
	sink  *logSink
	level hclog.Level
	line  []byte
}

func (w *stream) Write(p []byte) (int, error) {
	n := len(p)
	take := w.sink.take(n)
	w.line = append(w.line, p[:take]...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.sink.emit(w.level, w.line[:i])
		w.line = w.line[i+1:]
	}
	if take < n && len(w.line) > 0 {
		w.sink.emit(w.level, w.line)
		w.line = w.line[:0]
	}
	return n, nil // never fail the guest's write: logging must not change behaviour
}

// flush logs a partial line left at the end of a call.
func (w *stream) flush() {
	if len(w.line) > 0 {
		w.sink.emit(w.level, w.line)
		w.line = w.line[:0]
	}
}
