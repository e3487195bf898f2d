//go:build wasip1

// Command gobad is a Go test guest (GOOS=wasip1 GOARCH=wasm,
// -buildmode=c-shared) whose behaviour depends on the tool name, to test
// what only a Go guest does: a runtime, panics, the Go allocator, WASI file
// access. It uses the abi package directly, without the SDK.
//
//	panic  -> panics (the Go runtime exits with code 2)
//	open   -> os.ReadFile("/etc/passwd") and returns its error as code 1000
//	loop   -> spins forever
//	alloc  -> allocates until the Go runtime dies of memory exhaustion
//	log    -> prints to stdout and stderr
//	other  -> estimate = len(params) * 1000 + prompt_chars
package main

import (
	"fmt"
	"os"

	"github.com/purser-dev/purser/abi"
)

func main() {}

var (
	inbuf  []byte // owned by the host between purser_alloc calls
	outbuf []byte
	mfst   []byte
	config []byte
	sink   [][]byte
)

//go:wasmexport purser_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport purser_alloc
func alloc(n int32) int32 {
	inbuf = make([]byte, n)
	return ptrOf(inbuf)
}

//go:wasmexport purser_manifest
func manifest() int64 {
	m := abi.Manifest{ABI: abi.VersionString(abi.Version), Name: "gobad", Version: "1.0.0", Kind: abi.KindEstimator, Tools: []string{"*"}}
	mfst = m.AppendJSON(mfst[:0])
	return packed(mfst)
}

//go:wasmexport purser_init
func initialize(ptr, n int32) int64 {
	config = append(config[:0], inbuf[:n]...)
	return 0
}

//go:wasmexport purser_estimate
func estimate(ptr, n int32) int64 {
	req, err := abi.ParseRequest(inbuf[:n])
	if err != nil {
		return fail(abi.CodeBadRequest, err.Error())
	}
	switch string(req.Tool()) {
	case "panic":
		panic("gobad: asked to panic")
	case "open":
		_, err := os.ReadFile("/etc/passwd")
		return fail(abi.CodeFirstCustom, fmt.Sprintf("open: %v", err))
	case "loop":
		for {
		}
	case "alloc":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "log":
		fmt.Println("hello from stdout")
		fmt.Fprintln(os.Stderr, "hello from stderr")
	}
	chars, _ := req.PromptChars()
	outbuf = abi.AppendEstimate(outbuf[:0], int64(len(req.Params()))*1000+chars)
	return packed(outbuf)
}

func fail(code abi.Code, msg string) int64 {
	outbuf = abi.AppendError(outbuf[:0], code, msg)
	return packed(outbuf)
}
