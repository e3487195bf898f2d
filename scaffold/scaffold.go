// Package scaffold writes a new purser plugin project (`purser plugin new`)
// from templates embedded in the binary. Each project carries a copy of its
// language's guest SDK (kept equal to sdk/ by a test), so it builds with no
// purser checkout; Go projects may instead point at a checkout (Options.Repo).
package scaffold

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// The SDK copies live under _sdk so the go tool does not build them as
// packages of this module; "all:" embeds them anyway (and the templates'
// .gitignore).
//
//go:embed all:templates all:_sdk
var files embed.FS

// Languages are the values --lang accepts, in the order help lists them.
var Languages = []string{"go", "rust", "assemblyscript"}

// Kinds are the values --kind accepts.
var Kinds = []string{"estimator", "policy"}

// Errors callers branch on (the CLI maps them to usage errors).
var (
	ErrLang     = errors.New("unknown language")
	ErrKind     = errors.New("unknown kind")
	ErrName     = errors.New("bad plugin name")
	ErrNotEmpty = errors.New("folder not empty")
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Options say what to create.
type Options struct {
	Lang  string // one of Languages
	Kind  string // one of Kinds
	Name  string // the plugin's name: lower-case letters, digits, dashes
	Dir   string // where to create it; must be absent or empty unless Force
	Force bool   // write into a non-empty Dir, replacing files of the same name
	Repo  string // Go only: a purser checkout to build against instead of the vendored SDK copy
}

// lang says where a language's SDK copy goes in the project.
type lang struct {
	sdkDir string // below _sdk/
	dest   string // below the project ("" = its root)
}

var langs = map[string]lang{
	"go":             {sdkDir: "go", dest: "purser-sdk"},
	"rust":           {sdkDir: "rust", dest: ""},
	"assemblyscript": {sdkDir: "assemblyscript", dest: "sdk"},
}

// Check validates o without touching the disk.
func (o Options) Check() error {
	if _, ok := langs[o.Lang]; !ok {
		return fmt.Errorf("--lang %q: %w; supported: %s", o.Lang, ErrLang, strings.Join(Languages, ", "))
	}
	if o.Kind != "estimator" && o.Kind != "policy" {
		return fmt.Errorf("--kind %q: %w; supported: %s", o.Kind, ErrKind, strings.Join(Kinds, ", "))
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("plugin name %q: %w: use lower-case letters, digits and dashes, starting with a letter", o.Name, ErrName)
	}
	if o.Repo != "" && o.Lang != "go" {
		return fmt.Errorf("--repo applies to --lang go only")
	}
	return nil
}

// Create writes the project into o.Dir and returns the files written,
// relative to it, sorted.
func Create(o Options) ([]string, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if err := checkDir(o.Dir, o.Force); err != nil {
		return nil, err
	}
	data, err := templateData(o)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	if err := renderTemplates(o, data, out); err != nil {
		return nil, err
	}
	if o.Repo == "" {
		if err := copySDK(o, data, out); err != nil {
			return nil, err
		}
	}
	return writeAll(o.Dir, out)
}

// checkDir refuses a non-empty folder unless force: a scaffold must not
// silently mix with, or overwrite, someone's work.
func checkDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0 && !force:
		return fmt.Errorf("%s: %w (%d entries); choose another --dir or pass --force", dir, ErrNotEmpty, len(entries))
	}
	return nil
}

func templateData(o Options) (map[string]string, error) {
	goVersion, err := goDirective()
	if err != nil {
		return nil, err
	}
	asc, err := ascVersion()
	if err != nil {
		return nil, err
	}
	d := map[string]string{"Name": o.Name, "Kind": o.Kind, "Go": goVersion, "SDK": "./purser-sdk", "ASC": asc}
	if o.Repo != "" {
		root, err := filepath.Abs(o.Repo)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(root, "sdk", "go", "go.mod")); err != nil {
			return nil, fmt.Errorf("--repo %s: not a purser checkout (no sdk/go/go.mod)", o.Repo)
		}
		d["SDK"] = filepath.ToSlash(root)
	}
	return d, nil
}

// goDirective is the vendored Go SDK's "go" version: a module requiring it
// must declare at least the same.
func goDirective() (string, error) {
	raw, err := files.ReadFile("_sdk/go/sdk/go/go.mod.in")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("embedded sdk/go/go.mod: no go directive")
}

// ascVersion is the assemblyscript version the AssemblyScript SDK's lockfile
// pins: the project's package.json must name the same, or npm ci refuses.
func ascVersion() (string, error) {
	raw, err := files.ReadFile("_sdk/assemblyscript/package-lock.json")
	if err != nil {
		return "", err
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return "", fmt.Errorf("embedded sdk/assemblyscript/package-lock.json: %w", err)
	}
	v := lock.Packages["node_modules/assemblyscript"].Version
	if v == "" {
		return "", errors.New("embedded sdk/assemblyscript/package-lock.json: no assemblyscript version")
	}
	return v, nil
}

// renderTemplates runs templates/any/KIND (the same cases.yaml for every
// language), templates/LANG/common, templates/LANG/KIND and, with the SDK
// copy, templates/LANG/vendored; a file's ".tmpl" suffix is dropped. A
// missing folder is empty.
func renderTemplates(o Options, data map[string]string, out map[string][]byte) error {
	roots := []string{path.Join("templates", "any", o.Kind), path.Join("templates", o.Lang, "common"), path.Join("templates", o.Lang, o.Kind)}
	if o.Repo == "" {
		roots = append(roots, path.Join("templates", o.Lang, "vendored")) // files beside the SDK copy
	}
	for _, root := range roots {
		err := fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipDir
			}
			if err != nil || d.IsDir() {
				return err
			}
			text, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			t, err := template.New(p).Option("missingkey=error").Parse(string(text))
			if err != nil {
				return err // a broken embedded template; the tests catch it
			}
			var b strings.Builder
			if err := t.Execute(&b, data); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out[strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")] = []byte(b.String())
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// copySDK adds the language's SDK copy; "go.mod.in" becomes "go.mod" (a
// real go.mod would put the copy outside this module, where go:embed
// cannot reach).
func copySDK(o Options, data map[string]string, out map[string][]byte) error {
	l := langs[o.Lang]
	root := path.Join("_sdk", l.sdkDir)
	return fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if base := path.Base(rel); base == "go.mod.in" {
			rel = path.Join(path.Dir(rel), "go.mod")
		}
		if rel == "package-lock.json" { // the SDK's lock, renamed to the project
			out[rel] = []byte(strings.ReplaceAll(string(b), `"name": "@purser-dev/sdk"`, fmt.Sprintf("%q: %q", "name", data["Name"])))
			return nil
		}
		out[path.Join(l.dest, rel)] = b
		return nil
	})
}

func writeAll(dir string, out map[string][]byte) ([]string, error) {
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, out[name], mode); err != nil {
			return nil, err
		}
		if err := os.Chmod(p, mode); err != nil { // --force over an existing file keeps its mode otherwise
			return nil, err
		}
	}
	return names, nil
}
