package enforcer

import (
	"fmt"
	"sort"
)

// CostTable maps a tool name (matched exactly) to its flat estimate.
type CostTable map[string]Nanos

// DefaultCostTable returns a fresh copy of the brief's built-in table.
func DefaultCostTable() CostTable {
	usd := func(s string) Nanos { return MustParseUSD(s) }
	return CostTable{
		"Read": usd("0.001"), "Write": usd("0.005"), "Edit": usd("0.005"),
		"Bash": usd("0.01"), "PythonCode": usd("0.01"), "Delete": usd("0.002"),
		"Grep": usd("0.001"), "Glob": usd("0.001"), "HTTP": usd("0.005"),
		"WebFetch": usd("0.01"), "Workflow": usd("0.05"), "Agent": usd("0.10"),
		"MCP": usd("0.02"),
	}
}

// With returns a copy of t with overrides applied; negative prices are
// rejected with the tool's name.
func (t CostTable) With(overrides map[string]Nanos) (CostTable, error) {
	out := make(CostTable, len(t)+len(overrides))
	for k, v := range t {
		out[k] = v
	}
	for _, k := range sortedKeys(overrides) {
		v := overrides[k]
		if k == "" {
			return nil, fmt.Errorf("cost table: empty tool name")
		}
		if v < 0 {
			return nil, fmt.Errorf("cost table: tool %q: negative price %d nano-USD", k, v)
		}
		out[k] = v
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnknownRule prices tools that no estimator and no table entry knows.
type UnknownRule struct {
	Base Nanos
	// BufferBP multiplies Base, in basis points (12000 = x1.20).
	BufferBP int64
	// Strict denies unknown tools instead of pricing them.
	Strict bool
}

// DefaultUnknownRule is $0.01 x 1.20 = $0.012.
func DefaultUnknownRule() UnknownRule {
	return UnknownRule{Base: MustParseUSD("0.01"), BufferBP: 12000}
}

// Estimate returns Base x Buffer, rounded up, never 0 for a positive base.
func (r UnknownRule) Estimate() (Nanos, error) {
	return MulRatioCeil(r.Base, r.BufferBP, 10000)
}

func (r UnknownRule) validate() error {
	if r.Base <= 0 {
		return fmt.Errorf("unknown-tool rule: base must be > 0, got %s", r.Base)
	}
	if r.BufferBP < 10000 {
		return fmt.Errorf("unknown-tool rule: buffer must be >= 1.00 (10000 bp), got %d bp", r.BufferBP)
	}
	_, err := r.Estimate()
	return err
}
