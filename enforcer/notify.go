package enforcer

import (
	"github.com/hashicorp/go-hclog"
)

// LogNotifier writes each alert as one log line: info, warning or critical
// (hclog has no critical level, so critical is logged at Error).
type LogNotifier struct{ Logger hclog.Logger }

// Notify logs the alert.
func (n LogNotifier) Notify(a Alert) {
	lvl := hclog.Info
	switch a.Level {
	case AlertWarning:
		lvl = hclog.Warn
	case AlertCritical:
		lvl = hclog.Error
	}
	msg := "budget threshold crossed"
	if a.Overdrawn {
		msg = "account overdrawn"
	}
	n.Logger.Log(lvl, msg, "account", a.Account, "threshold_pct", a.ThresholdPct, "level", string(a.Level),
		"committed_usd", a.Committed.Decimal(), "limit_usd", a.Limit.Decimal())
}

// MultiNotifier sends each alert to every notifier in order.
type MultiNotifier []Notifier

// Notify fans the alert out.
func (m MultiNotifier) Notify(a Alert) {
	for _, n := range m {
		n.Notify(a)
	}
}
