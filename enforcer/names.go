package enforcer

import (
	"fmt"
	"strings"
)

// CheckAccountName enforces the naming rule that keeps scopes and budgets
// in step (DESIGN "Names and parents"): an id of the form "P/x" must be a
// descendant of P, so its parent is P itself or an account inside P's
// subtree (an id starting with "P/", itself a descendant of P by the same
// rule). Tokens are scoped by name while budgets follow parents; without
// this a name could claim a parent it does not have and spend outside it.
// The error wraps ErrInvalidAccount and names both ids.
func CheckAccountName(id, parent string) error {
	cut := strings.LastIndexByte(id, '/')
	if cut < 0 {
		return nil
	}
	prefix := id[:cut]
	if prefix == "" || cut == len(id)-1 {
		return fmt.Errorf("account %q: %w: an id may not start or end with '/'", id, ErrInvalidAccount)
	}
	if parent == prefix || strings.HasPrefix(parent, prefix+"/") {
		return nil
	}
	if parent == "" {
		return fmt.Errorf("account %q: %w: its name says it is inside %q, so its parent must be %q or an account under it (it has none)",
			id, ErrInvalidAccount, prefix, prefix)
	}
	return fmt.Errorf("account %q: %w: its name says it is inside %q, so its parent must be %q or an account under it, not %q",
		id, ErrInvalidAccount, prefix, prefix, parent)
}
