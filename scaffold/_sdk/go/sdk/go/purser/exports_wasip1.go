//go:build wasip1

package purser

import (
	"unsafe"

	"github.com/purser-dev/purser/abi"
)

// The ABI exports. They live in this package (Go 1.24+ allows
// //go:wasmexport outside package main as long as the package is linked
// in), so a plugin's main package only registers its plugin.

//go:wasmexport purser_abi_version
func purserABIVersion() int32 { return abi.Version }

//go:wasmexport purser_alloc
func purserAlloc(size int32) int32 {
	if registered == nil || size < 0 {
		return 0
	}
	return addr(registered.Alloc(int(size)))
}

//go:wasmexport purser_manifest
func purserManifest() int64 {
	if registered == nil {
		return 0
	}
	return pack(registered.Manifest())
}

//go:wasmexport purser_init
func purserInit(ptr, n int32) int64 {
	x := registered
	if x == nil {
		return pack(NewInstance(nil).fail(CodeInternal, noPlugin))
	}
	cfg, ok := x.input(ptr, n)
	if !ok {
		return pack(x.fail(CodeBadRequest, "purser_init: config is not inside the buffer purser_alloc returned"))
	}
	if res := x.Init(cfg); res != nil {
		return pack(res)
	}
	return 0
}

//go:wasmexport purser_estimate
func purserEstimate(ptr, n int32) int64 { return call(abi.ExportEstimate, ptr, n) }

//go:wasmexport purser_admit
func purserAdmit(ptr, n int32) int64 { return call(abi.ExportAdmit, ptr, n) }

func call(export string, ptr, n int32) int64 {
	x := registered
	if x == nil {
		return pack(NewInstance(nil).fail(CodeInternal, noPlugin))
	}
	rec, ok := x.input(ptr, n)
	if !ok {
		return pack(x.fail(CodeBadRequest, export+": request is not inside the buffer purser_alloc returned"))
	}
	return pack(x.Call(export, rec))
}

// input maps the host's (ptr, len) onto the buffer Alloc handed out, so
// the guest never dereferences an arbitrary host-supplied address.
func (x *Instance) input(ptr, n int32) ([]byte, bool) {
	in := x.Input()
	if n == 0 {
		return in[:0], true
	}
	if len(in) == 0 || n < 0 || ptr != addr(in) || int(n) > len(in) {
		return nil, false
	}
	return in[:n], true
}

// addr is the linear-memory address of b's first byte (0 for an empty
// slice: the host treats 0 as "cannot allocate").
func addr(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func pack(b []byte) int64 { return int64(abi.PackPtrLen(uint32(addr(b)), uint32(len(b)))) }
