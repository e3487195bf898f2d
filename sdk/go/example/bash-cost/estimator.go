// Command bash-cost is the example plugin of sdk/go/README.md: an
// estimator that prices Bash calls by the length of their command.
package main

import (
	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// Plugin declares the estimator: its manifest and how to build it from
// the config JSON the host delivers at purser_init.
func Plugin() *purser.Plugin {
	return purser.NewEstimator(purser.Manifest{
		Name:         "bash-cost",
		Version:      "0.1.0",
		Tools:        []string{"Bash"},
		Description:  "Bash calls: a base price plus a price per command character",
		ConfigSchema: []byte(`{"type":"object","properties":{"base_usd":{"type":"string"},"per_char_usd":{"type":"string"}}}`),
	}, newEstimator)
}

// Estimator is built once per instance; Estimate runs per call.
type Estimator struct {
	base, perChar int64 // nano-USD
}

func newEstimator(config []byte) (purser.Estimator, error) {
	var c struct {
		BaseUSD    string `json:"base_usd"`
		PerCharUSD string `json:"per_char_usd"`
	}
	c.BaseUSD, c.PerCharUSD = "0.01", "0.00001" // defaults
	// Strict: unknown fields and wrong types are errors naming the field.
	if err := purser.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	e := &Estimator{}
	var err error
	if e.base, err = usd.Parse(c.BaseUSD); err != nil {
		return nil, purser.BadConfig("base_usd: " + err.Error())
	}
	if e.perChar, err = usd.Parse(c.PerCharUSD); err != nil {
		return nil, purser.BadConfig("per_char_usd: " + err.Error())
	}
	purser.LogInfo("bash-cost: base " + usd.Format(e.base) + ", per char " + usd.Format(e.perChar))
	return e, nil
}

// Estimate reads params.command in place (no JSON decoding, no allocation).
func (e *Estimator) Estimate(req *purser.Request) (int64, error) {
	if !req.ToolIs("Bash") {
		return 0, purser.Unsupported("bash-cost prices Bash only")
	}
	cmd, err := req.Param("command")
	if err != nil {
		return 0, err // malformed params: reported as bad_params
	}
	if !cmd.IsString() {
		return 0, purser.BadParams("params.command: want a string")
	}
	n := int64(len(cmd.Raw()) - 2) // bytes between the quotes, escapes included
	cost, ok := usd.MulDivCeil(n, e.perChar, 1)
	if !ok {
		return 0, purser.Internal("cost overflows")
	}
	return e.base + cost, nil
}
