package enforcer

import "time"

// AlertLevel grades a threshold crossing.
type AlertLevel string

// Alert levels.
const (
	AlertInfo     AlertLevel = "info"
	AlertWarning  AlertLevel = "warning"
	AlertCritical AlertLevel = "critical"
)

// Alert is one rising crossing of a threshold by an account's committed
// spend, or an overdraft.
type Alert struct {
	Account      string
	ThresholdPct int // 0 for an overdraft alert
	Level        AlertLevel
	Committed    Nanos
	Limit        Nanos
	Overdrawn    bool
	At           time.Time
}

// Notifier receives alerts. Ledgers call it outside their locks; it must be
// safe for concurrent use and should not block for long.
type Notifier interface{ Notify(Alert) }

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Alert)

// Notify calls f.
func (f NotifierFunc) Notify(a Alert) { f(a) }

// LevelFor grades a threshold: >=100% critical, >=75% warning, else info.
func LevelFor(thresholdPct int) AlertLevel {
	switch {
	case thresholdPct >= 100:
		return AlertCritical
	case thresholdPct >= 75:
		return AlertWarning
	default:
		return AlertInfo
	}
}
