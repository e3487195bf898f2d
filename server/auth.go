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
	// Accounts are the account ids the token may use; an entry ending in
	// "*" is a prefix ("team-a/*"). Empty means every account.
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
	accounts []string
}

var anonymousAdmin = &principal{name: "anonymous (auth off)", role: RoleAdmin}

func (p *principal) mayUse(account string) bool {
	if len(p.accounts) == 0 {
		return true
	}
	for _, a := range p.accounts {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(account, prefix) {
				return true
			}
		} else if a == account {
			return true
		}
	}
	return false
}

type authenticator struct {
	tokens []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	p    *principal
}

func newAuthenticator(tokens []Token) (*authenticator, error) {
	a := &authenticator{}
	for i, t := range tokens {
		raw, err := hex.DecodeString(t.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): sha256 must be 64 hex characters", i, t.Name)
		}
		if t.Role != RoleAdmin && t.Role != RoleAgent {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): role %q is not admin or agent", i, t.Name, t.Role)
		}
		var e tokenEntry
		copy(e.hash[:], raw)
		e.p = &principal{name: t.Name, role: t.Role, accounts: append([]string(nil), t.Accounts...)}
		a.tokens = append(a.tokens, e)
	}
	return a, nil
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// authenticate compares the presented token's hash with every configured
// one in constant time (no early exit that would leak which matched).
func (a *authenticator) authenticate(r *http.Request) (*principal, bool) {
	if !a.enabled() {
		return anonymousAdmin, true
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
