// Package signing makes and checks detached Ed25519 signatures of purser
// plugins (docs/signing.md). A signature covers the module's sha256 and the
// sha256 of its manifest in canonical JSON, under a versioned domain prefix,
// so a signature can be neither moved to another module nor to another
// protocol. The package uses the standard library only; the host calls
// Policy.Check at load and reload, the CLI makes keys and signatures.
package signing
