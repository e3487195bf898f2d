// Command ask-above-utilization is a purser policy that asks for a human's
// approval when a call would take its account's utilization past a
// configured percentage. See README.md.
//
// This file is the plugin's logic and builds on any platform, so it is
// unit-tested on the host; wasm.go (wasip1 only) registers it.
package main

import (
	"encoding/json"
	"math/bits"
	"strconv"

	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// Version is the plugin's version, reported in its manifest.
const Version = "1.0.0"

const configSchema = `{"type":"object","additionalProperties":false,"properties":{` +
	`"ask_above_pct":{"type":"number","exclusiveMinimum":0,"description":"ask when (committed + pending + estimate) / limit would be above this percentage (at most two decimals); default 80"}}}`

// Plugin declares the policy; it judges every tool.
func Plugin() *purser.Plugin {
	return purser.NewPolicy(purser.Manifest{
		Name:         "ask-above-utilization",
		Version:      Version,
		Tools:        []string{purser.ToolAny},
		Description:  "Asks for approval when (committed + pending + estimate) / limit would exceed ask_above_pct (default 80%); unlimited accounts are always allowed.",
		ConfigSchema: []byte(configSchema),
	}, func(cfg []byte) (purser.Policy, error) { return newPolicy(cfg) })
}

// DefaultAskAbovePct is the default threshold in percent.
const DefaultAskAbovePct = "80"

// Policy holds the threshold in basis points (hundredths of a percent), so
// every comparison is exact integer arithmetic.
type Policy struct {
	thresholdBP int64
	pctText     string // the threshold as configured, for reasons ("80", "87.5")
}

type config struct {
	AskAbovePct *json.Number `json:"ask_above_pct"`
}

func newPolicy(raw []byte) (*Policy, error) {
	var c config
	if err := purser.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	text := DefaultAskAbovePct
	if c.AskAbovePct != nil {
		text = string(*c.AskAbovePct)
	}
	bp, err := parseBasisPoints(text)
	if err != nil {
		return nil, purser.BadConfig("ask_above_pct: " + err.Error())
	}
	return &Policy{thresholdBP: bp, pctText: string(formatBP(nil, bp))}, nil
}

// parseBasisPoints reads a positive percentage with at most two decimals
// ("80", "87.5", "99.99", "150") as hundredths of a percent, exactly.
func parseBasisPoints(s string) (int64, error) {
	bad := &purser.Error{Code: purser.CodeBadConfig, Message: "want a percentage above 0 with at most two decimals, got " + strconv.Quote(s)}
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			break
		}
	}
	if whole == "" || len(frac) > 2 || len(whole) > 9 {
		return 0, bad
	}
	for len(frac) < 2 {
		frac += "0"
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || v <= 0 {
		return 0, bad
	}
	return v, nil
}

// Admit asks when (committed + pending + estimate) * 100 / limit is strictly
// above the threshold: exactly at the threshold is still allowed. Accounts
// without a limit are always allowed. With a limit of 0 any positive total
// asks.
func (p *Policy) Admit(req *purser.Request) (purser.Decision, error) {
	b := req.Budget()
	if b.LimitNanos < 0 {
		return purser.Allow(), nil
	}
	total, ok := sum(b.CommittedNanos, b.PendingNanos, req.EstimateNanos())
	if !ok {
		return purser.Decision{}, purser.NewError(purser.CodeBadRequest, "negative or overflowing budget fields")
	}
	// total / limit > bp / 10000  <=>  total * 10000 > bp * limit (exact, 128-bit).
	lh, ll := bits.Mul64(uint64(total), 10_000)
	rh, rl := bits.Mul64(uint64(p.thresholdBP), uint64(b.LimitNanos))
	if lh < rh || (lh == rh && ll <= rl) {
		return purser.Allow(), nil
	}
	return purser.AskBytes(p.reason(req.Scratch(), total, b, req.EstimateNanos())), nil
}

// reason reads, e.g., "Utilization would reach 85.5% of the $10.00 limit
// (committed $5.00 + pending $2.00 + this call $1.55 = $8.55), above the 80% approval threshold".
func (p *Policy) reason(dst []byte, total int64, b purser.Budget, est int64) []byte {
	dst = append(dst, "Utilization would reach "...)
	dst = appendUtilization(dst, total, b.LimitNanos)
	dst = append(dst, "% of the "...)
	dst = usd.Append(dst, b.LimitNanos)
	dst = append(dst, " limit (committed "...)
	dst = usd.Append(dst, b.CommittedNanos)
	dst = append(dst, " + pending "...)
	dst = usd.Append(dst, b.PendingNanos)
	dst = append(dst, " + this call "...)
	dst = usd.Append(dst, est)
	dst = append(dst, " = "...)
	dst = usd.Append(dst, total)
	dst = append(dst, "), above the "...)
	dst = append(dst, p.pctText...)
	return append(dst, "% approval threshold"...)
}

// appendUtilization writes total/limit as a percentage rounded up to two
// decimals (so a value just above the threshold never prints as equal to
// it), without the percent sign; "∞" for a zero limit.
func appendUtilization(dst []byte, total, limit int64) []byte {
	if limit == 0 {
		return append(dst, "∞"...)
	}
	hi, lo := bits.Mul64(uint64(total), 10_000)
	if hi >= uint64(limit) { // absurd utilization: cap the display
		return append(dst, ">9999999"...)
	}
	q, r := bits.Div64(hi, lo, uint64(limit))
	if r != 0 {
		q++
	}
	return formatBP(dst, int64(q))
}

// formatBP writes basis points as a percentage without trailing zeros
// ("80", "85.5", "99.99").
func formatBP(dst []byte, bp int64) []byte {
	dst = strconv.AppendInt(dst, bp/100, 10)
	switch f := bp % 100; {
	case f == 0:
	case f%10 == 0:
		dst = append(dst, '.', byte('0'+f/10))
	default:
		dst = append(dst, '.', byte('0'+f/10), byte('0'+f%10))
	}
	return dst
}

func sum(a, b, c int64) (int64, bool) {
	if a < 0 || b < 0 || c < 0 {
		return 0, false
	}
	s, ok := usd.Add(a, b)
	if !ok {
		return 0, false
	}
	return usd.Add(s, c)
}
