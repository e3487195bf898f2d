package enforcer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Canonical params are how the result cache, approvals and reservation
// fingerprints tell two calls apart, so the encoding must be injective:
// two different params never share a key. encoding/json is not: it turns
// every invalid UTF-8 byte into U+FFFD, so "/a\xff" and "/a\xfe" (both
// legal Go strings, e.g. file names) would be one call. Here valid text is
// written as JSON and any other byte as \xNN, a form JSON never produces.

// maxCanonicalDepth bounds nesting, so a cyclic or absurd value fails
// instead of exhausting the stack.
const maxCanonicalDepth = 64

// canonicalParams returns the canonical, injective encoding of params:
// JSON with object keys sorted and no insignificant space, except that a
// string with invalid UTF-8 writes those bytes as \xNN. Values of types
// JSON decoding does not produce are written as their Go type followed by
// their JSON; one whose JSON cannot be built, or would hide invalid
// UTF-8, is an *InvalidParamsError naming the param.
func canonicalParams(params map[string]any) ([]byte, error) {
	return appendCanonical(make([]byte, 0, 64), "", params, 0)
}

func appendCanonical(b []byte, path string, v any, depth int) ([]byte, error) {
	if depth > maxCanonicalDepth {
		return nil, &InvalidParamsError{Param: path, Reason: fmt.Sprintf("nested deeper than %d levels", maxCanonicalDepth)}
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendCanonicalString(b, x), nil
	case json.Number:
		return appendCanonicalString(append(b, '#'), string(x)), nil
	case float64:
		return appendFloat(b, path, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case map[string]any:
		return appendObject(b, path, x, depth)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, path+"["+strconv.Itoa(i)+"]", e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	default:
		return appendOther(b, path, v)
	}
}

func appendObject(b []byte, path string, m map[string]any, depth int) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendCanonicalString(b, k), ':')
		var err error
		if b, err = appendCanonical(b, joinParam(path, k), m[k], depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func joinParam(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// appendFloat writes a float like encoding/json would; NaN and infinities
// have no JSON form and are refused.
func appendFloat(b []byte, path string, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &InvalidParamsError{Param: path, Reason: fmt.Sprintf("%v is not a JSON number", f)}
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64), nil
}

// appendCanonicalString quotes s as JSON does, but writes each byte that
// is not valid UTF-8 as \xNN instead of replacing it with U+FFFD.
func appendCanonicalString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, '\\', 'x', hexDigit(s[i]>>4), hexDigit(s[i]&0xf))
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigit(byte(r)>>4), hexDigit(byte(r)&0xf))
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func hexDigit(n byte) byte { return "0123456789abcdef"[n] }

// appendOther covers values JSON decoding does not produce (structs,
// other number types, typed slices): their Go type keeps them apart from
// a decoded value with the same JSON ([]byte{1} and "AQ==" are different
// calls), and JSON that replaced invalid UTF-8 is refused rather than
// allowed to collide.
func appendOther(b []byte, path string, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, &InvalidParamsError{Param: path, Reason: fmt.Sprintf("cannot be encoded: %v", err)}
	}
	if bytes.Contains(j, []byte(`\ufffd`)) {
		return nil, &InvalidParamsError{Param: path, Reason: fmt.Sprintf("a %T holding text that is not valid UTF-8 has no canonical form; pass it as a string", v)}
	}
	b = append(b, '<')
	b = append(b, fmt.Sprintf("%T", v)...)
	b = append(b, '>')
	return append(b, j...), nil
}
