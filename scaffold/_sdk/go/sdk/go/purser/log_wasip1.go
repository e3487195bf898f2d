//go:build wasip1

package purser

import "unsafe"

//go:wasmimport purser log
//go:noescape
func hostLog(level int32, ptr unsafe.Pointer, n int32)

func logString(level Level, msg string) {
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func logBytes(level Level, msg []byte) {
	hostLog(int32(level), unsafe.Pointer(unsafe.SliceData(msg)), int32(len(msg)))
}
