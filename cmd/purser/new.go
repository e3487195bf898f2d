package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// runPluginNew scaffolds a Go plugin that builds and passes its own test
// out of the box: go.mod (pointing at this checkout's SDK), the plugin,
// its test, the wasip1 glue, a cases table for `purser plugin test`, and
// a README with the build command.
func runPluginNew(_ context.Context, args []string, out io.Writer) error {
	fs := newFlags("plugin new", out)
	lang := fs.String("lang", "go", "plugin language (go)")
	kind := fs.String("kind", "estimator", "estimator or policy")
	dir := fs.String("dir", "", "where to create the plugin (default ./NAME)")
	repo := fs.String("repo", "", "purser checkout whose sdk/go to use (default: found from the working directory)")
	name, rest := splitFileArg(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	switch {
	case *lang != "go":
		return usagef("--lang %q: only go is scaffolded (Rust and AssemblyScript: see abi/ABI.md and plugins/)", *lang)
	case *kind != "estimator" && *kind != "policy":
		return usagef("--kind must be estimator or policy, got %q", *kind)
	case !regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`).MatchString(name):
		return usagef("plugin name %q: use lower-case letters, digits and dashes, starting with a letter", name)
	}
	root, err := findRepo(*repo)
	if err != nil {
		return err
	}
	target := *dir
	if target == "" {
		target = name
	}
	if err := scaffold(target, name, *kind, root); err != nil {
		return err
	}
	fmt.Fprintf(out, "created %s (%s plugin %q)\n  cd %s && go test ./...\n  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o %s.wasm .\n  purser plugin test %s.wasm --cases cases.yaml\n",
		target, *kind, name, target, name, name)
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
			return "", errors.New("no purser checkout (with sdk/go) found above the working directory; pass --repo PATH")
		}
		dir = parent
	}
}

func scaffold(target, name, kind, root string) error {
	if _, err := os.Stat(target); err == nil {
		return fmt.Errorf("%s already exists; choose another --dir", target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	goVersion, err := goDirective(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	data := map[string]string{"Name": name, "Kind": kind, "Root": filepath.ToSlash(root), "Go": goVersion}
	files := map[string]string{"go.mod": goModTmpl, "plugin.go": estimatorTmpl, "plugin_test.go": estimatorTestTmpl,
		"wasm.go": wasmTmpl, "cases.yaml": estimatorCasesTmpl, "README.md": readmeTmpl}
	if kind == "policy" {
		files["plugin.go"], files["plugin_test.go"], files["cases.yaml"] = policyTmpl, policyTestTmpl, policyCasesTmpl
	}
	for file, text := range files {
		if err := writeTemplate(filepath.Join(target, file), text, data); err != nil {
			return err
		}
	}
	return nil
}

// goDirective reads the checkout's "go" version: a module requiring it
// must declare at least the same.
func goDirective(goMod string) (string, error) {
	raw, err := os.ReadFile(goMod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: no go directive", goMod)
}

func writeTemplate(path, text string, data any) error {
	t, err := template.New(filepath.Base(path)).Parse(text)
	if err != nil {
		return err // programmer error in a template
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

const goModTmpl = `module example.com/purser-plugins/{{.Name}}

go {{.Go}}

require (
	github.com/purser-dev/purser v0.0.0
	github.com/purser-dev/purser/sdk/go v0.0.0
)

// Until the SDK is published, build against a purser checkout.
replace (
	github.com/purser-dev/purser => {{.Root}}
	github.com/purser-dev/purser/sdk/go => {{.Root}}/sdk/go
)
`

const wasmTmpl = `//go:build wasip1

package main

import "github.com/purser-dev/purser/sdk/go/purser"

// Go's reactor mode (-buildmode=c-shared) runs init in _initialize and
// never calls main: registration happens here.
func init() { purser.Register(Plugin()) }

func main() {}
`

const estimatorTmpl = `// Command {{.Name}} is a purser estimator plugin.
package main

import (
	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// Plugin declares the manifest and builds the estimator from its config.
func Plugin() *purser.Plugin {
	return purser.NewEstimator(purser.Manifest{
		Name:         "{{.Name}}",
		Version:      "0.1.0",
		Tools:        []string{"*"},
		Description:  "a flat price per call, from config",
		ConfigSchema: []byte(` + "`" + `{"type":"object","properties":{"price_usd":{"type":"string"}}}` + "`" + `),
	}, newEstimator)
}

type estimator struct{ priceNanos int64 }

func newEstimator(config []byte) (purser.Estimator, error) {
	c := struct {
		PriceUSD string ` + "`json:\"price_usd\"`" + `
	}{PriceUSD: "0.002"}
	if err := purser.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	n, err := usd.Parse(c.PriceUSD)
	if err != nil {
		return nil, purser.BadConfig("price_usd: " + err.Error())
	}
	return &estimator{priceNanos: n}, nil
}

// Estimate runs per call: keep it allocation-free.
func (e *estimator) Estimate(req *purser.Request) (int64, error) {
	return e.priceNanos, nil
}
`

const estimatorTestTmpl = `package main

import (
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

func TestEstimate(t *testing.T) {
	p, err := pursertest.New(Plugin(), ` + "`" + `{"price_usd":"0.003"}` + "`" + `)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Estimate(pursertest.NewCall("Bash", ` + "`" + `{"command":"ls"}` + "`" + `)); err != nil || got != 3_000_000 {
		t.Fatalf("got %d, %v; want 3000000 nano-USD", got, err)
	}
	if _, err := pursertest.New(Plugin(), ` + "`" + `{"price_usd":"-1"}` + "`" + `); pursertest.Code(err) != abi.CodeBadConfig {
		t.Fatalf("negative price accepted: %v", err)
	}
}
`

const estimatorCasesTmpl = `# purser plugin test {{.Name}}.wasm --cases cases.yaml
config: {price_usd: "0.003"}
cases:
  - name: flat price
    tool: Bash
    params: {command: ls}
    want_estimate: "0.003"
  - name: bad config is refused
    config: {price_usd: "-1"}
    tool: Bash
    want_error: bad_config
`

const policyTmpl = `// Command {{.Name}} is a purser policy plugin.
package main

import (
	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// Plugin declares the manifest and builds the policy from its config.
func Plugin() *purser.Plugin {
	return purser.NewPolicy(purser.Manifest{
		Name:         "{{.Name}}",
		Version:      "0.1.0",
		Tools:        []string{"*"},
		Description:  "ask a human for calls estimated above a threshold",
		ConfigSchema: []byte(` + "`" + `{"type":"object","properties":{"ask_above_usd":{"type":"string"}}}` + "`" + `),
	}, newPolicy)
}

type policy struct{ askAboveNanos int64 }

func newPolicy(config []byte) (purser.Policy, error) {
	c := struct {
		AskAboveUSD string ` + "`json:\"ask_above_usd\"`" + `
	}{AskAboveUSD: "0.05"}
	if err := purser.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	n, err := usd.Parse(c.AskAboveUSD)
	if err != nil {
		return nil, purser.BadConfig("ask_above_usd: " + err.Error())
	}
	return &policy{askAboveNanos: n}, nil
}

// Admit runs per call: keep it allocation-free.
func (p *policy) Admit(req *purser.Request) (purser.Decision, error) {
	if req.EstimateNanos() > p.askAboveNanos {
		return purser.Ask("estimate above " + usd.Format(p.askAboveNanos)), nil
	}
	return purser.Allow(), nil
}
`

const policyTestTmpl = `package main

import (
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

func TestAdmit(t *testing.T) {
	p, err := pursertest.New(Plugin(), ` + "`" + `{"ask_above_usd":"0.05"}` + "`" + `)
	if err != nil {
		t.Fatal(err)
	}
	low, err := p.Admit(pursertest.NewCall("Bash", ` + "`{}`" + `), 10_000_000)
	if err != nil || low.Verdict != abi.Allow {
		t.Fatalf("$0.01: %+v %v; want allow", low, err)
	}
	high, err := p.Admit(pursertest.NewCall("Bash", ` + "`{}`" + `), 60_000_000)
	if err != nil || high.Verdict != abi.Ask || high.Reason != "estimate above $0.05" {
		t.Fatalf("$0.06: %+v %v; want ask", high, err)
	}
}
`

const policyCasesTmpl = `# purser plugin test {{.Name}}.wasm --cases cases.yaml
config: {ask_above_usd: "0.05"}
cases:
  - name: cheap call is allowed
    tool: Bash
    estimate_usd: "0.01"
    want: allow
  - name: expensive call asks
    tool: Agent
    estimate_usd: "0.10"
    want: ask
`

const readmeTmpl = `# {{.Name}}

A purser {{.Kind}} plugin, scaffolded by ` + "`purser plugin new`" + `.

` + "```" + `sh
go test ./...                                            # the logic, on your machine
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o {{.Name}}.wasm .
purser plugin inspect {{.Name}}.wasm                     # exports, manifest, validation
purser plugin test {{.Name}}.wasm --cases cases.yaml     # the table of expected answers
` + "```" + `

Drop the .wasm into purser's plugin folder (plugins.dir) and the running server loads it.
The ABI is documented in abi/ABI.md of the purser repository; the SDK in sdk/go/README.md.
`
