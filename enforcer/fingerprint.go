package enforcer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A reservation's fingerprint holds what the caller asked for beyond the
// ledger's own fields, so a reused id with other params, another explicit
// estimate or another TTL is a conflict instead of a retry that skips
// admission. It is readable enough to say which of them differs:
//
//	v1:p=<sha256 of the canonical params, hex>,e=<explicit estimate nanos, or ->,t=<requested TTL ns, 0 = default>
//
// at most 3+2+64+3+20+3+20 = 115 bytes (<= MaxFingerprintLen). The
// chain's estimate is left out on purpose: a plugin reload may change it,
// and a retry must still be recognised; the ledger compares the held
// amount itself.
const fingerprintPrefix = "v1:"

func reserveFingerprint(params map[string]any, explicit *Estimate, ttl time.Duration) (string, error) {
	canon, err := canonicalParams(params)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	b := make([]byte, 0, 115)
	b = append(b, fingerprintPrefix+"p="...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, ",e="...)
	if explicit == nil {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(explicit.Nanos), 10)
	}
	b = append(b, ",t="...)
	b = strconv.AppendInt(b, int64(ttl), 10)
	return string(b), nil
}

// fingerprintDiff names what differs between the stored fingerprint and
// the retry's; the params are only known by digest, so they are named but
// not shown.
func fingerprintDiff(was, now string) string {
	if !strings.HasPrefix(was, fingerprintPrefix) {
		return "the first reservation was made without the enforcer's fingerprint (another client or version)"
	}
	wp, np := fingerprintParts(was), fingerprintParts(now)
	switch {
	case wp["p"] != np["p"]:
		return "the params differ"
	case wp["e"] != np["e"]:
		return fmt.Sprintf("the explicit estimate was %s, now %s", fingerprintEstimate(wp["e"]), fingerprintEstimate(np["e"]))
	case wp["t"] != np["t"]:
		return fmt.Sprintf("the requested ttl was %s, now %s", fingerprintTTL(wp["t"]), fingerprintTTL(np["t"]))
	}
	return "the fingerprints differ"
}

func fingerprintParts(fp string) map[string]string {
	parts := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(fp, fingerprintPrefix), ",") {
		k, v, _ := strings.Cut(kv, "=")
		parts[k] = v
	}
	return parts
}

func fingerprintEstimate(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "none (the estimation chain)"
	}
	return Nanos(n).String()
}

func fingerprintTTL(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return "the default"
	}
	return time.Duration(n).String()
}
