package purser

import "unsafe"

// unsafeString views b as a string without copying. Callers only pass the
// result to functions that do not retain it (strconv parsers).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
