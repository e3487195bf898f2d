//go:build !wasip1

package purser

import (
	"log"
)

// Outside a wasm guest (host-side tests) log lines go to the standard
// library's default logger, prefixed with the level.
func logString(level Level, msg string) { log.Print(levelName(level) + " " + msg) }

func logBytes(level Level, msg []byte) { logString(level, string(msg)) }

func levelName(l Level) string {
	switch {
	case l <= LevelTrace:
		return "[TRACE]"
	case l == LevelDebug:
		return "[DEBUG]"
	case l == LevelInfo:
		return "[INFO]"
	case l == LevelWarn:
		return "[WARN]"
	}
	return "[ERROR]"
}
