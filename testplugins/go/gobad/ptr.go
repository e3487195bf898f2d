//go:build wasip1

package main

import "unsafe"

func ptrOf(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func packed(b []byte) int64 { return int64(uint64(uint32(ptrOf(b)))<<32 | uint64(uint32(len(b)))) }
