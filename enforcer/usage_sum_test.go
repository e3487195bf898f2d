package enforcer

import (
	"errors"
	"strings"
	"testing"
)

// A call whose fields each pass but whose tokens sum past MaxUsageTokens
// is refused, naming "usage" and the total; at the bound it passes.
func TestUsageValidateBoundsTheSum(t *testing.T) {
	half := int64(MaxUsageTokens / 2)
	over := TokenUsage{Model: "m", InputTokens: half, CacheReadTokens: half, OutputTokens: 1}
	err := over.Validate()
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Field != "usage" || !strings.Contains(ue.Reason, "1000000001") || !errors.Is(err, ErrInvalidParams) {
		t.Errorf("usage summing to %d: %v", int64(MaxUsageTokens)+1, err)
	}
	at := TokenUsage{Model: "m", InputTokens: half, OutputTokens: half}
	if err := at.Validate(); err != nil {
		t.Errorf("usage summing to the bound: %v", err)
	}
}
