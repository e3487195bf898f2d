package plugins_test

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/sdk/go/pursertest"
)

func BenchmarkZZSmall(b *testing.B) {
	g := load(b, llmWasm, llmConfig)
	c := pursertest.NewCall("LLM", `{"prompt":"x"}`)
	for b.Loop() {
		g.Estimate(c)
	}
}
func BenchmarkZZ64K(b *testing.B) {
	g := load(b, llmWasm, llmConfig)
	c := pursertest.NewCall("LLM", `{"prompt":"`+strings.Repeat("x", 65000)+`"}`)
	for b.Loop() {
		g.Estimate(c)
	}
}
func BenchmarkZZ64KBash(b *testing.B) {
	g := load(b, llmWasm, llmConfig)
	c := pursertest.NewCall("Bash", `{"prompt":"`+strings.Repeat("x", 65000)+`"}`)
	for b.Loop() {
		g.Estimate(c)
	}
}
