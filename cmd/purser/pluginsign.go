package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/signing"
)

const (
	keygenUsage = "usage: purser plugin keygen --out NAME [--force]  (writes NAME.key, private, and NAME.pub)"
	signUsage   = "usage: purser plugin sign --key NAME.key FILE.wasm [--config JSON] [--out FILE.wasm.sig]"
	verifyUsage = "usage: purser plugin verify --pub NAME.pub FILE.wasm [--config JSON] [--sig FILE.wasm.sig]"
)

func runPluginKeygen(_ context.Context, args []string, out io.Writer) error {
	fs := newFlags("plugin keygen", out)
	name := fs.String("out", "", "path prefix of the key pair: NAME.key (mode 0600) and NAME.pub")
	force := fs.Bool("force", false, "overwrite existing key files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() > 0 {
		return usagef("%s", keygenUsage)
	}
	pub, priv, err := signing.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privPEM, err := signing.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	pubPEM, err := signing.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeNew(*name+".key", privPEM, 0o600, *force); err != nil {
		return err
	}
	if err := writeNew(*name+".pub", pubPEM, 0o644, *force); err != nil {
		return err
	}
	fmt.Fprintf(out, "key id:  %s\nprivate: %s.key (keep it secret)\npublic:  %s.pub\ninline:  %s\n", signing.KeyID(pub), *name, *name, signing.CompactPublicKey(pub))
	return nil
}

// writeNew writes a file, refusing to replace one unless force: a lost
// private key cannot be recovered.
func writeNew(path string, b []byte, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, os.ErrExist) {
		return usagef("%s exists; pass --force to overwrite it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// signFlags are the flags sign and verify share.
type signFlags struct {
	fs     *flag.FlagSet
	file   string
	key    *string
	config *string
	sig    *string
}

func parseSignFlags(name, keyFlag, keyHelp, sigFlag, usage string, args []string, out io.Writer) (*signFlags, error) {
	file, rest := splitFileArg(args)
	sf := &signFlags{fs: newFlags("plugin "+name, out)}
	sf.key = sf.fs.String(keyFlag, "", keyHelp)
	sf.config = sf.fs.String("config", "", "plugin config JSON, if the plugin refuses to start without one")
	sf.sig = sf.fs.String(sigFlag, "", "signature file (default FILE.wasm.sig)")
	if err := parseFlags(sf.fs, rest); err != nil {
		return nil, err
	}
	if file == "" && sf.fs.NArg() == 1 {
		file = sf.fs.Arg(0)
	}
	if file == "" || *sf.key == "" {
		return nil, usagef("%s", usage)
	}
	sf.file = file
	if *sf.sig == "" {
		*sf.sig = file + signing.SigSuffix
	}
	return sf, nil
}

// pluginDigests loads the plugin (no signature policy) for the digests a
// signature covers: the module's and its manifest's.
func pluginDigests(ctx context.Context, file, config string) (module, manifest [32]byte, _ error) {
	bin, err := os.ReadFile(file)
	if err != nil {
		return module, manifest, err
	}
	module = sha256.Sum256(bin)
	cfg, err := configJSON(nilIfEmpty(config))
	if err != nil {
		return module, manifest, usagef("--config: %v", err)
	}
	h, err := quietHost(ctx)
	if err != nil {
		return module, manifest, err
	}
	defer h.Close(ctx)
	p, err := h.Load(ctx, host.Spec{File: file, Bytes: bin, Config: cfg})
	if err != nil {
		return module, manifest, fmt.Errorf("reading the manifest needs a plugin that loads (pass --config if it needs one): %w", err)
	}
	defer p.Close()
	b, _ := hex.DecodeString(p.ManifestSHA256())
	copy(manifest[:], b)
	return module, manifest, nil
}

func runPluginSign(ctx context.Context, args []string, out io.Writer) error {
	sf, err := parseSignFlags("sign", "key", "private key file (from purser plugin keygen)", "out", signUsage, args, out)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(*sf.key)
	if err != nil {
		return err
	}
	priv, err := signing.ParsePrivateKey(keyPEM)
	if err != nil {
		return usagef("--key %s: %v", *sf.key, err)
	}
	module, manifest, err := pluginDigests(ctx, sf.file, *sf.config)
	if err != nil {
		return err
	}
	s := signing.Sign(priv, module, manifest)
	if err := os.WriteFile(*sf.sig, s.Marshal(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "signed %s with key id %s -> %s\n", sf.file, s.KeyID, *sf.sig)
	return nil
}

func runPluginVerify(ctx context.Context, args []string, out io.Writer) error {
	sf, err := parseSignFlags("verify", "pub", "public key file (PEM, or ed25519:BASE64 on one line)", "sig", verifyUsage, args, out)
	if err != nil {
		return err
	}
	pubText, err := os.ReadFile(*sf.key)
	if err != nil {
		return err
	}
	pub, err := signing.ParsePublicKey(pubText)
	if err != nil {
		return usagef("--pub %s: %v", *sf.key, err)
	}
	v, err := verifyFile(ctx, pub, sf)
	if err != nil {
		fmt.Fprintf(out, "refused: %s: %v\n", sf.file, err)
		return &exitError{exitDeny}
	}
	fmt.Fprintf(out, "ok: %s is signed by key id %s (manifest sha256 %s)\n", sf.file, v.KeyID, v.ManifestSHA256)
	return nil
}

// verifyFile checks the signature file as a host requiring signatures
// would, with pub as the only trusted key.
func verifyFile(ctx context.Context, pub ed25519.PublicKey, sf *signFlags) (*signing.Verified, error) {
	pol, err := signing.NewPolicy([]signing.TrustedKey{{Public: pub}}, true)
	if err != nil {
		return nil, err
	}
	sig, err := os.ReadFile(*sf.sig)
	if errors.Is(err, os.ErrNotExist) {
		sig, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(sf.file)
	if err != nil {
		return nil, err
	}
	v, err := pol.Check(sig, sha256.Sum256(bin))
	if errors.Is(err, signing.ErrUnknownKey) {
		return nil, fmt.Errorf("%w (--pub %s is key id %s)", err, *sf.key, signing.KeyID(pub))
	}
	if err != nil {
		return nil, err
	}
	_, manifest, err := pluginDigests(ctx, sf.file, *sf.config)
	if err != nil {
		return nil, err
	}
	return v, v.CheckManifest(manifest)
}
