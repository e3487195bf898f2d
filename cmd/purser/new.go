package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/purser-dev/purser/scaffold"
)

// runPluginNew scaffolds a plugin project that builds and passes its own
// tests out of the box, from templates embedded in this binary: no purser
// checkout is needed (the project carries a copy of the SDK).
func runPluginNew(_ context.Context, args []string, out io.Writer) error {
	fs := newFlags("plugin new", out)
	o := scaffold.Options{}
	fs.StringVar(&o.Lang, "lang", "go", "plugin language: "+strings.Join(scaffold.Languages, ", "))
	fs.StringVar(&o.Kind, "kind", "estimator", "estimator or policy")
	fs.StringVar(&o.Dir, "dir", "", "where to create the plugin (default ./NAME); must be absent or empty unless --force")
	fs.BoolVar(&o.Force, "force", false, "write into a non-empty --dir, replacing files of the same name")
	fs.StringVar(&o.Repo, "repo", "", "Go only: build against this purser checkout's sdk/go instead of a copy (for SDK developers)")
	name, rest := splitFileArg(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	o.Name = name
	if o.Dir == "" {
		o.Dir = name
	}
	if err := o.Check(); err != nil {
		return usagef("%v", err)
	}
	written, err := scaffold.Create(o)
	if errors.Is(err, scaffold.ErrNotEmpty) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created %s (%s %s plugin %q, %d files)\n", o.Dir, o.Lang, o.Kind, name, len(written))
	wasm := filepath.Join(o.Dir, name+".wasm")
	fmt.Fprintf(out, "  %s\n  purser plugin test %s --cases %s\n", filepath.Join(o.Dir, "build.sh"), wasm, filepath.Join(o.Dir, "cases.yaml"))
	return nil
}

// findRepo walks up from start (or the working directory) to the purser
// checkout holding sdk/go.
func findRepo(start string) (string, error) {
	if start == "" {
		var err error
		if start, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "sdk", "go", "go.mod")) && fileExists(filepath.Join(dir, "abi", "ABI.md")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no purser checkout (with sdk/go) found above the working directory")
		}
		dir = parent
	}
}
