package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/purser-dev/purser/abi"
)

// Inspection describes a module without serving it: identity, the
// exports and imports with their signatures, and (when it loads) the
// manifest. A module that fails validation still gets its static part,
// plus LoadError saying why it was refused.
type Inspection struct {
	File      string
	SHA256    string
	SizeBytes int
	Exports   []string // "name(params) -> results"
	Imports   []string // "module.name(params) -> results"
	Manifest  *abi.Manifest
	// InitFuel is the fuel starting an instance took (see Plugin.InitFuel)
	// and InitFuelLimit its budget; 0 when the module did not load.
	InitFuel, InitFuelLimit int64
	LoadError               error
	// ConfigRefused is the guest's message when purser_init refused the
	// config (code bad_config); the manifest is then still known.
	// ConfigMissing lists the keys the manifest's config schema requires
	// that the config lacks.
	ConfigRefused string
	ConfigMissing []string
}

// Inspect compiles spec's module, lists its interface, then tries a full
// Load (validation, smoke test) and reports the manifest or the refusal.
func (h *Host) Inspect(ctx context.Context, spec Spec) (Inspection, error) {
	bin := spec.Bytes
	if bin == nil {
		b, err := os.ReadFile(spec.File)
		if err != nil {
			return Inspection{}, fmt.Errorf("inspect %s: %w", spec.File, err)
		}
		bin = b
	}
	in := Inspection{File: spec.label(), SHA256: Digest(bin), SizeBytes: len(bin)}
	// A module over a load limit is not compiled here either: listing its
	// interface would cost what the limit exists to prevent.
	// Nor is a module whose vectors its bytes cannot back: the decoder
	// would allocate what they declare.
	var mle *ModuleLimitError
	if _, err := checkModuleLimits(bin, spec.Limits.Or(h.cfg.Limits)); errors.As(err, &mle) {
		in.LoadError = limitLoadError(&spec, mle)
		return in, nil
	} else if err != nil {
		return in, fmt.Errorf("inspect %s: not a valid WebAssembly module: %w", spec.label(), err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return in, fmt.Errorf("inspect %s: not a valid WebAssembly module: %w", spec.label(), err)
	}
	for name, def := range cm.ExportedFunctions() {
		in.Exports = append(in.Exports, name+signature(def))
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		in.Imports = append(in.Imports, mod+"."+name+signature(def))
	}
	sort.Strings(in.Exports)
	sort.Strings(in.Imports)
	spec.Bytes = bin
	p, err := h.Load(ctx, spec)
	if err != nil {
		in.LoadError = err
		in.describeRefusal(err, spec.Config)
		return in, nil
	}
	m := p.Manifest()
	in.Manifest = &m
	in.InitFuel, in.InitFuelLimit = p.InitFuel(), p.Limits().FuelInitMax
	p.Close()
	return in, nil
}

// describeRefusal keeps what a refusal after the manifest still tells:
// the manifest and, when purser_init refused the config, the guest's
// reason and the keys the schema requires that the config lacks.
func (in *Inspection) describeRefusal(err error, config []byte) {
	var le *LoadError
	if errors.As(err, &le) && le.Manifest != nil {
		in.Manifest = le.Manifest
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.Op != "init" || abi.Code(ce.Code) != abi.CodeBadConfig {
		return
	}
	in.ConfigRefused = ce.Message
	if in.Manifest != nil {
		in.ConfigMissing = missingKeys(in.Manifest.ConfigSchema, config)
	}
}

// missingKeys lists the schema's top-level "required" keys that config (a
// JSON object; empty means {}) lacks. A schema or config that is not a
// JSON object yields none: the guest's message says what is wrong.
func missingKeys(schema, config []byte) []string {
	var s struct {
		Required []string `json:"required"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	have := map[string]json.RawMessage{}
	if len(config) > 0 && json.Unmarshal(config, &have) != nil {
		return nil
	}
	var missing []string
	for _, k := range s.Required {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	return missing
}

func signature(def api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return strings.Join(out, ", ")
	}
	s := "(" + names(def.ParamTypes()) + ")"
	if len(def.ResultTypes()) > 0 {
		s += " -> " + names(def.ResultTypes())
	}
	return s
}
