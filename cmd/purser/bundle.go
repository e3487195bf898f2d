package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/purser-dev/purser/bundle"
	"github.com/purser-dev/purser/signing"
)

const (
	bundleBuildUsage   = "usage: purser bundle build DIR -o FILE.tar.gz [--key NAME.key] [--revision REV]"
	bundleInspectUsage = "usage: purser bundle inspect DIR|FILE.tar.gz|URL [--pub NAME.pub ...] [--require-signature] [--json]"
)

// runBundle builds and inspects plugin bundles (docs/bundles.md).
func runBundle(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("%s\n%s", bundleBuildUsage, bundleInspectUsage)
	}
	switch args[0] {
	case "build":
		return runBundleBuild(args[1:], out)
	case "inspect":
		return runBundleInspect(ctx, args[1:], out)
	}
	return usagef("purser bundle: unknown subcommand %q (build, inspect)", args[0])
}

func runBundleBuild(args []string, out io.Writer) error {
	dir, rest := splitFileArg(args)
	fs := newFlags("bundle build", out)
	outFile := fs.String("o", "", "the .tar.gz to write")
	keyFile := fs.String("key", "", "private key (purser plugin keygen) that signs bundle.json")
	rev := fs.String("revision", "", "revision to record (default: bundle.json's)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" || *outFile == "" {
		return usagef("%s", bundleBuildUsage)
	}
	opt := bundle.BuildOptions{Revision: *rev}
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return usagef("--key: %v", err)
		}
		if opt.Key, err = signing.ParsePrivateKey(b); err != nil {
			return usagef("--key %s: %v", *keyFile, err)
		}
	}
	b, err := bundle.Build(dir, opt)
	if err != nil {
		return err
	}
	f, err := os.Create(*outFile)
	if err != nil {
		return err
	}
	if err := b.WriteTarGz(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s: revision %q, %d plugin(s), %d file(s), digest %s%s\n", *outFile, b.Manifest.Revision,
		len(b.Manifest.Plugins), len(b.Files), b.Digest, signedNote(b.SignedBy))
	return nil
}

func signedNote(keyID string) string {
	if keyID == "" {
		return ", unsigned"
	}
	return ", signed by key id " + keyID
}

// pubList is a repeatable --pub flag.
type pubList []signing.TrustedKey

func (p *pubList) String() string { return fmt.Sprint(len(*p)) }

func (p *pubList) Set(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pub, err := signing.ParsePublicKey(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	*p = append(*p, signing.TrustedKey{Public: pub})
	return nil
}

func runBundleInspect(ctx context.Context, args []string, out io.Writer) error {
	src, rest := splitFileArg(args)
	fs := newFlags("bundle inspect", out)
	var keys pubList
	fs.Var(&keys, "pub", "trusted public key for bundle.json.sig (repeatable)")
	require := fs.Bool("require-signature", false, "refuse an unsigned bundle")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if src == "" && fs.NArg() == 1 {
		src = fs.Arg(0)
	}
	if src == "" {
		return usagef("%s", bundleInspectUsage)
	}
	files, _, _, err := bundleSource(src, bundle.Limits{}).Fetch(ctx, "")
	if err == nil {
		var b *bundle.Bundle
		if b, err = bundle.Verify(files, bundle.Options{TrustedKeys: keys, RequireSignature: *require}); err == nil {
			return printBundle(out, b, *asJSON)
		}
	}
	fmt.Fprintln(out, "refused:", err)
	if errors.Is(err, os.ErrNotExist) {
		return err
	}
	return &exitError{code: exitDeny}
}

// bundleSource picks the HTTP or the path source.
func bundleSource(src string, lim bundle.Limits) bundle.Source {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return bundle.HTTPSource{URL: src, Limits: lim}
	}
	return bundle.PathSource{Path: src, Limits: lim}
}

func printBundle(out io.Writer, b *bundle.Bundle, asJSON bool) error {
	m := b.Manifest
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"digest": b.Digest, "signed_by": b.SignedBy, "manifest": m})
	}
	fmt.Fprintf(out, "ok: bundle %s\nformat:   %s\nrevision: %q\nsigned:   %s\n\nplugins:\n", b.Digest, m.Format, m.Revision, strings.TrimPrefix(signedNote(b.SignedBy), ", "))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PATH\tORDER\tFAIL_MODE\tSIGNATURE\tCONFIG")
	for _, e := range m.Plugins {
		sig := "no .sig"
		if _, ok := m.Files[e.Path+signing.SigSuffix]; ok {
			sig = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", e.Path, e.Order, orDefault(e.FailMode, "closed"), sig, orDefault(string(e.Config), "{}"))
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "\nfiles:")
	names := make([]string, 0, len(m.Files))
	for n := range m.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "  %s  %s (%d bytes)\n", m.Files[n], n, len(b.Files[n]))
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
