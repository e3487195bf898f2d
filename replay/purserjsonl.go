package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// pjStep is one line of a purser JSONL trace (see FORMAT.md).
type pjStep struct {
	Tool        string          `json:"tool"`
	Params      json.RawMessage `json:"params"`
	Model       string          `json:"model"`
	ActualUSD   json.RawMessage `json:"actual_usd"`
	ActualNanos *json.Number    `json:"actual_nanos"`
	Usage       *pjUsage        `json:"usage"`
}

type pjUsage struct {
	Model      string `json:"model"`
	Input      int64  `json:"input_tokens"`
	Output     int64  `json:"output_tokens"`
	CacheRead  int64  `json:"cache_read_tokens"`
	CacheWrite int64  `json:"cache_write_tokens"`
}

// ReadPurserJSONL reads purser's own trace format: one JSON object per
// line, {"tool": ..., "params": {...}, "actual_usd": "0.0123"} (see
// FORMAT.md). Blank lines and lines starting with # are ignored; any other
// malformed line is an error naming the file and line.
func ReadPurserJSONL(r io.Reader, name string, prices enforcer.Pricer) (*Trace, error) {
	if prices == nil {
		prices = DefaultPrices()
	}
	t := &Trace{Name: strings.TrimSuffix(filepath.Base(name), ".jsonl"), Path: name, Format: FormatPurser}
	br := bufio.NewReaderSize(r, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if b := bytes.TrimSpace(line); len(b) > 0 && b[0] != '#' {
			st, perr := parsePurserLine(b, prices)
			if perr != nil {
				return nil, &ParseError{File: name, Line: lineNo, Err: perr}
			}
			st.Line = lineNo
			t.Steps = append(t.Steps, st)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &ParseError{File: name, Line: lineNo, Err: err}
		}
	}
	return t, nil
}

func parsePurserLine(b []byte, prices enforcer.Pricer) (Step, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ps pjStep
	if err := dec.Decode(&ps); err != nil {
		return Step{}, fmt.Errorf("not a purser trace step: %w", err)
	}
	if ps.Tool == "" {
		return Step{}, errors.New(`"tool" is required`)
	}
	params, err := decodeParams(ps.Params)
	if err != nil {
		return Step{}, err
	}
	if ps.Model != "" {
		if _, set := params["model"]; !set {
			params["model"] = ps.Model
		}
	}
	st := Step{Tool: ps.Tool, Name: ps.Tool, Params: params}
	return st, ps.actual(&st, prices)
}

func decodeParams(raw json.RawMessage) (map[string]any, error) {
	params := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return params, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		return nil, fmt.Errorf(`"params" must be a JSON object: %w`, err)
	}
	return params, nil
}

// actual sets the step's cost: actual_usd, else actual_nanos, else usage
// x the price table, else none (the estimate is charged).
func (ps *pjStep) actual(st *Step, prices enforcer.Pricer) error {
	switch {
	case len(ps.ActualUSD) > 0 && string(ps.ActualUSD) != "null":
		s := string(ps.ActualUSD)
		if ps.ActualUSD[0] == '"' {
			if err := json.Unmarshal(ps.ActualUSD, &s); err != nil {
				return fmt.Errorf("actual_usd: %w", err)
			}
		}
		n, err := enforcer.ParseBilledUSD(s)
		if err != nil {
			return fmt.Errorf("actual_usd: %w", err)
		}
		st.Actual, st.ActualSource = &n, ActualTrace
	case ps.ActualNanos != nil:
		v, err := strconv.ParseInt(ps.ActualNanos.String(), 10, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("actual_nanos: want a non-negative integer, got %s", ps.ActualNanos.String())
		}
		st.Actual, st.ActualSource = nanosPtr(enforcer.Nanos(v)), ActualTrace
	case ps.Usage != nil:
		return ps.usageCost(st, prices)
	}
	return nil
}

func (ps *pjStep) usageCost(st *Step, prices enforcer.Pricer) error {
	u := ps.Usage
	if u.Input < 0 || u.Output < 0 || u.CacheRead < 0 || u.CacheWrite < 0 {
		return errors.New("usage: token counts must be >= 0")
	}
	model := u.Model
	if model == "" {
		model, _ = st.Params["model"].(string)
	}
	st.Usage = &Usage{Model: model, Input: u.Input, Output: u.Output, CacheRead: u.CacheRead, CacheWrite: u.CacheWrite}
	c, ok, err := PriceUsage(prices, *st.Usage)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if !ok {
		return fmt.Errorf("usage: model %q is not in the price table", model)
	}
	st.Actual, st.ActualSource = &c, ActualTokens
	return nil
}
