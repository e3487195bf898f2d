// Package purser is the guest SDK for writing purser plugins in standard Go
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared). A plugin author writes an
// estimator or a policy as an ordinary Go type built from the plugin's
// config, declares a manifest, and registers both from package main:
//
//	//go:build wasip1
//
//	package main
//
//	import "github.com/purser-dev/purser/sdk/go/purser"
//
//	func init() { purser.Register(plugin()) } // plugin() lives in a plain, host-testable file
//	func main() {}
//
// The SDK owns every ABI export (purser_abi_version, purser_alloc,
// purser_manifest, purser_init, purser_estimate, purser_admit): it decodes
// requests in place (Request), encodes results, routes errors to codes and
// reuses its buffers so a call does not allocate. Instance runs the same
// dispatch on the host, so plugins are unit-tested with plain `go test`.
//
// See sdk/go/README.md for a complete example and abi/ABI.md for the
// contract underneath.
package purser
