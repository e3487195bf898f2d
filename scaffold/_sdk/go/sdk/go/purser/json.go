package purser

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Value is a raw JSON value found by Field (or Request.Param). It aliases
// the request buffer: it is valid during the call only. The zero Value means
// "absent".
type Value struct {
	raw []byte
	key string // for error messages
}

// Exists reports whether the field was present (even as null).
func (v Value) Exists() bool { return len(v.raw) > 0 }

// Raw is the value's JSON text, e.g. `"gpt-4o"`, `1024`, `{"a":1}`.
func (v Value) Raw() []byte { return v.raw }

// IsNull reports whether the value is JSON null.
func (v Value) IsNull() bool { return string(v.raw) == "null" }

// IsString reports whether the value is a JSON string.
func (v Value) IsString() bool { return len(v.raw) > 0 && v.raw[0] == '"' }

// Int reads an integer value (no fraction, no exponent) without allocating.
func (v Value) Int() (int64, error) {
	if !v.Exists() {
		return 0, &FieldError{Key: v.key, Reason: "absent"}
	}
	n, err := strconv.ParseInt(bytesString(v.raw), 10, 64)
	if err != nil {
		return 0, &FieldError{Key: v.key, Reason: "not an int64 integer: " + clip(v.raw)}
	}
	return n, nil
}

// Bool reads true or false.
func (v Value) Bool() (bool, error) {
	switch string(v.raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &FieldError{Key: v.key, Reason: "not a boolean: " + clip(v.raw)}
}

// AppendString appends the decoded contents of a string value to dst.
// Strings without escapes are copied as they are; use StringBytes to alias
// them without copying.
func (v Value) AppendString(dst []byte) ([]byte, error) {
	if !v.IsString() || len(v.raw) < 2 {
		return dst, &FieldError{Key: v.key, Reason: "not a string: " + clip(v.raw)}
	}
	return unescape(dst, v.raw[1:len(v.raw)-1])
}

// StringBytes returns a string value's contents. When the string has no
// escapes the result aliases the request (no copy); otherwise it is decoded
// into scratch (which may be nil) and the grown scratch is returned too.
func (v Value) StringBytes(scratch []byte) (s, grown []byte, err error) {
	if !v.IsString() || len(v.raw) < 2 {
		return nil, scratch, &FieldError{Key: v.key, Reason: "not a string: " + clip(v.raw)}
	}
	body := v.raw[1 : len(v.raw)-1]
	if indexByte(body, '\\') < 0 {
		return body, scratch, nil
	}
	out, err := unescape(scratch[:0], body)
	if fe, ok := err.(*FieldError); ok {
		fe.Key = v.key
	}
	return out, out, err
}

// FieldError describes a params field that is absent, malformed or of the
// wrong type. Request.Param fills Key.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return "params: " + e.Reason
	}
	return "params." + e.Key + ": " + e.Reason
}

// Field finds the value of key among the top-level members of the JSON
// object obj without decoding anything else and without allocating. It
// returns the zero Value (Exists false) and a nil error when the key is
// absent or obj is empty, and an error when obj is not a well-formed
// object up to (and including) the member found. Keys are compared after
// unescaping; with duplicate keys the first wins.
func Field(obj []byte, key string) (Value, error) {
	i := skipWS(obj, 0)
	if i == len(obj) {
		return Value{}, nil // no params at all
	}
	if obj[i] != '{' {
		return Value{}, &FieldError{Reason: "not a JSON object"}
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return Value{}, nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return Value{}, syntaxErr(obj, i, "expected a member name")
		}
		kEnd, escaped, ok := scanString(obj, i)
		if !ok {
			return Value{}, syntaxErr(obj, i, "unterminated string")
		}
		match := keyEquals(obj[i+1:kEnd-1], escaped, key)
		i = skipWS(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return Value{}, syntaxErr(obj, i, "expected ':'")
		}
		i = skipWS(obj, i+1)
		vEnd, ok := skipValue(obj, i, 0)
		if !ok {
			return Value{}, syntaxErr(obj, i, "malformed value")
		}
		if match {
			return Value{raw: obj[i:vEnd:vEnd], key: key}, nil
		}
		i = skipWS(obj, vEnd)
		if i >= len(obj) {
			return Value{}, syntaxErr(obj, i, "unterminated object")
		}
		switch obj[i] {
		case ',':
			i = skipWS(obj, i+1)
		case '}':
			return Value{}, nil
		default:
			return Value{}, syntaxErr(obj, i, "expected ',' or '}'")
		}
	}
}

func syntaxErr(b []byte, at int, what string) error {
	return &FieldError{Reason: "malformed JSON at byte " + strconv.Itoa(at) + " of " + strconv.Itoa(len(b)) + ": " + what}
}

func keyEquals(raw []byte, escaped bool, key string) bool {
	if !escaped {
		return string(raw) == key
	}
	// Rare: compare while decoding, on a small stack buffer when possible.
	var buf [64]byte
	dec, err := unescape(buf[:0], raw)
	return err == nil && string(dec) == key
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just past the closing quote of the string
// starting at b[i] == '"', and whether it contains escapes. It jumps from
// quote to quote with bytes.IndexByte (assembly on wasm too), so long
// prompts are skipped at memory speed rather than byte by byte; control
// characters inside strings are not rejected (the host sends valid JSON).
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	j := i + 1
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return 0, false, false
		}
		q += j
		bs := bytes.IndexByte(b[j:q], '\\')
		if bs < 0 {
			return q + 1, escaped, true
		}
		// Slow path from the first backslash: step over escapes.
		escaped = true
		k := j + bs
		for k < q {
			if b[k] == '\\' {
				k += 2
			} else {
				k++
			}
		}
		if k == q {
			return q + 1, true, true // the quote at q is not escaped
		}
		j = q + 1 // the quote at q was escaped: keep looking
	}
}

const maxDepth = 512

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				end, _, ok := scanString(b, i)
				if !ok {
					return 0, false
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			end, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := i
		if b[j] == '-' {
			j++
		}
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == start {
			return 0, false
		}
		if j < len(b) && b[j] == '.' {
			j++
			s := j
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == s {
				return 0, false
			}
		}
		if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
			j++
			if j < len(b) && (b[j] == '+' || b[j] == '-') {
				j++
			}
			s := j
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == s {
				return 0, false
			}
		}
		return j, true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return 0, false
	}
}

// unescape appends the decoded body of a JSON string (without quotes).
func unescape(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, &FieldError{Reason: "malformed string escape"}
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return dst, &FieldError{Reason: "malformed \\u escape"}
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 { // high surrogate: expect a low one
				if r2, ok := hex4(s, i+3); ok && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' && r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, &FieldError{Reason: "malformed string escape"}
		}
	}
	return dst, nil
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// bytesString converts without copying for read-only use by strconv; the
// string must not outlive b nor escape.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafeString(b)
}

// clip quotes at most 40 bytes of a value for an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "..."
	}
	return strconv.Quote(string(b))
}
