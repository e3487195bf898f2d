package abi

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestDocRequestExample: the hex example of ABI.md section 3 is what this
// package encodes.
func TestDocRequestExample(t *testing.T) {
	doc, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("<!-- request-example -->\n```\n"))
	block, _, ok2 := bytes.Cut(after, []byte("```"))
	if !ok || !ok2 {
		t.Fatal("ABI.md: request-example block not found")
	}
	got, err := hex.DecodeString(strings.Join(strings.Fields(string(block)), ""))
	if err != nil {
		t.Fatalf("ABI.md example: %v", err)
	}
	want := AppendEstimateRequest(nil, &EstimateRequest{Call{Tool: "Read", Account: "a", Budget: Unlimited(0, 0), MaxTokens: -1}})
	if !bytes.Equal(got, want) {
		t.Fatalf("ABI.md example:\n%x\nencoded:\n%x", got, want)
	}
}
