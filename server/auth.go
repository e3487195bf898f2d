package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// Role is what a token may do.
type Role string

// Roles. Agents estimate, check, reserve, commit, release and read their
// accounts; admins also change accounts, decide approvals and reload plugins.
const (
	RoleAdmin Role = "admin"
	RoleAgent Role = "agent"
)

// Token is one bearer token, stored only as its SHA-256.
type Token struct {
	Name   string
	SHA256 string // hex of sha256(token)
	Role   Role
	// Accounts are the account ids the token may use: "team-a" (that
	// account), "team-a/*" (it and everything below it), "*" (all). An
	// admin token with none may use every account; an agent token must
	// list its accounts (use "*" explicitly for all).
	Accounts []string
}

// HashToken returns the hex SHA-256 of a raw token, as stored in config.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

type principal struct {
	name     string
	role     Role
	all      bool
	accounts []string
}

func (p *principal) mayUse(account string) bool {
	if p.all {
		return true
	}
	for _, a := range p.accounts {
		if base, ok := strings.CutSuffix(a, "/*"); ok {
			if account == base || strings.HasPrefix(account, base+"/") {
				return true
			}
		} else if a == account {
			return true
		}
	}
	return false
}

// estimateAccount is the account an estimate (which names none) is made
// for: the token's first scope, so that tenant-isolated plugins keep one
// tenant's estimates apart from another's (they would otherwise share the
// instance every account-less call uses). Tokens that may use every
// account, and the anonymous principal when auth is off, share "".
func (p *principal) estimateAccount() string {
	if p.all || len(p.accounts) == 0 {
		return ""
	}
	return strings.TrimSuffix(p.accounts[0], "/*")
}

// validateScopes accepts "id", "id/*" and "*" only: a bare "team-a*"
// would also match "team-ab", another tenant.
func validateScopes(t Token) (all bool, err error) {
	if len(t.Accounts) == 0 {
		if t.Role == RoleAgent {
			return false, fmt.Errorf("agent token %q lists no accounts; list them, or \"*\" for all", t.Name)
		}
		return true, nil
	}
	for _, a := range t.Accounts {
		switch {
		case a == "*":
			all = true
		case a == "" || a == "/*" || strings.Contains(strings.TrimSuffix(a, "/*"), "*"):
			return false, fmt.Errorf("token %q: account scope %q must be an id, id/* or *", t.Name, a)
		}
	}
	return all, nil
}

type authenticator struct {
	tokens    []tokenEntry
	anonymous *principal // the principal when auth is off
}

type tokenEntry struct {
	hash [sha256.Size]byte
	p    *principal
}

func newAuthenticator(tokens []Token) (*authenticator, error) {
	a := &authenticator{anonymous: &principal{name: "anonymous (auth off)", role: RoleAdmin, all: true}}
	for i, t := range tokens {
		raw, err := hex.DecodeString(t.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): sha256 must be 64 hex characters", i, t.Name)
		}
		if t.Role != RoleAdmin && t.Role != RoleAgent {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): role %q is not admin or agent", i, t.Name, t.Role)
		}
		all, err := validateScopes(t)
		if err != nil {
			return nil, fmt.Errorf("auth.tokens[%d]: %w", i, err)
		}
		var e tokenEntry
		copy(e.hash[:], raw)
		e.p = &principal{name: t.Name, role: t.Role, all: all, accounts: append([]string(nil), t.Accounts...)}
		a.tokens = append(a.tokens, e)
	}
	return a, nil
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// authenticate compares the presented token's hash with every configured
// one in constant time (no early exit that would leak which matched).
func (a *authenticator) authenticate(r *http.Request) (*principal, bool) {
	if !a.enabled() {
		return a.anonymous, true
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	var found *principal
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].hash[:]) == 1 {
			found = a.tokens[i].p
		}
	}
	return found, found != nil
}
