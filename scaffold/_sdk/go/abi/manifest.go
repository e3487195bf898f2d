package abi

import (
	"strconv"
	"unicode/utf8"
)

// Manifest describes a plugin. The guest returns it as UTF-8 JSON from
// purser_manifest:
//
//	{"abi":"1.0","name":"llm-tokens","version":"1.2.0","kind":"estimator",
//	 "tools":["LLM"],"description":"...","config_schema":{...}}
//
// The host decodes it (it has a JSON library); guests can build it with
// AppendJSON, which needs none.
type Manifest struct {
	// ABI is "major.minor"; optional, but when present it must equal what
	// purser_abi_version returns.
	ABI         string   `json:"abi,omitempty"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Kind        Kind     `json:"kind"`
	Tools       []string `json:"tools"`
	Description string   `json:"description,omitempty"`
	// ConfigSchema is a JSON Schema object for the plugin config, raw JSON.
	ConfigSchema []byte `json:"-"`
}

// Limits on manifest fields.
const (
	NameLenMax     = 64
	VersionLenMax  = 64
	ToolsMax       = 256
	ToolLenMax     = 128
	ManifestLenMax = 64 << 10
)

// ToolAny in Tools means the plugin handles every tool.
const ToolAny = "*"

// Validate checks the manifest's fields (not the schema's contents).
func (m *Manifest) Validate() error {
	if err := validName(m.Name); err != "" {
		return &FormatError{"manifest", "name " + strconv.Quote(m.Name) + ": " + err}
	}
	if m.Version == "" || len(m.Version) > VersionLenMax || !utf8.ValidString(m.Version) {
		return &FormatError{"manifest", "version must be 1.." + itoa(VersionLenMax) + " bytes of UTF-8"}
	}
	if m.Kind != KindEstimator && m.Kind != KindPolicy {
		return &FormatError{"manifest", "kind " + strconv.Quote(string(m.Kind)) + " is neither \"estimator\" nor \"policy\""}
	}
	if len(m.Tools) == 0 || len(m.Tools) > ToolsMax {
		return &FormatError{"manifest", "tools must list 1.." + itoa(ToolsMax) + " tool names (\"*\" for all)"}
	}
	for _, t := range m.Tools {
		if t == "" || len(t) > ToolLenMax || !utf8.ValidString(t) {
			return &FormatError{"manifest", "tool name " + strconv.Quote(t) + " must be 1.." + itoa(ToolLenMax) + " bytes of UTF-8"}
		}
	}
	return nil
}

// validName allows lower-case letters, digits, '-', '_' and '.', starting
// with a letter or digit: names appear in logger names, metrics labels and
// source labels, so they must be safe there.
func validName(s string) string {
	if s == "" || len(s) > NameLenMax {
		return "must be 1.." + itoa(NameLenMax) + " characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return "may hold only a-z, 0-9, '-', '_', '.' and must start with a letter or digit"
		}
	}
	return ""
}

// AppendJSON appends the manifest as JSON without reflection.
// ConfigSchema is copied verbatim and must be a JSON object when set.
func (m *Manifest) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if m.ABI != "" {
		dst = append(dst, `"abi":`...)
		dst = appendJSONString(dst, m.ABI)
		dst = append(dst, ',')
	}
	dst = append(dst, `"name":`...)
	dst = appendJSONString(dst, m.Name)
	dst = append(dst, `,"version":`...)
	dst = appendJSONString(dst, m.Version)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, string(m.Kind))
	dst = append(dst, `,"tools":[`...)
	for i, t := range m.Tools {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, t)
	}
	dst = append(dst, ']')
	if m.Description != "" {
		dst = append(dst, `,"description":`...)
		dst = appendJSONString(dst, m.Description)
	}
	if len(m.ConfigSchema) > 0 {
		dst = append(dst, `,"config_schema":`...)
		dst = append(dst, m.ConfigSchema...)
	}
	return append(dst, '}')
}

// Handles reports whether the manifest lists tool (or "*").
func (m *Manifest) Handles(tool string) bool {
	for _, t := range m.Tools {
		if t == tool || t == ToolAny {
			return true
		}
	}
	return false
}

// appendJSONString quotes s as a JSON string (strconv.Quote's escapes such
// as \x or \a are not JSON).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
