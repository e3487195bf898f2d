package purser

// Log writes msg to the plugin's logger on the host (the purser.log import)
// at level. Output counts against the host's per-call log budget; logging
// never fails the call.
func Log(level Level, msg string) { logString(level, msg) }

// LogBytes is Log for a message built in a buffer (no conversion).
func LogBytes(level Level, msg []byte) { logBytes(level, msg) }

// LogTrace logs at trace level.
func LogTrace(msg string) { logString(LevelTrace, msg) }

// LogDebug logs at debug level.
func LogDebug(msg string) { logString(LevelDebug, msg) }

// LogInfo logs at info level.
func LogInfo(msg string) { logString(LevelInfo, msg) }

// LogWarn logs at warn level.
func LogWarn(msg string) { logString(LevelWarn, msg) }

// LogError logs at error level.
func LogError(msg string) { logString(LevelError, msg) }
