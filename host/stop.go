package host

import (
	"context"
	"time"
)

// stopKind selects how a runaway guest is stopped. It is a seam: a later
// issue replaces the context mechanism with fuel metering.
type stopKind uint8

const (
	// stopContext closes the module when the per-call context expires.
	// wazero then checks the module's closed flag at every loop header and
	// function entry, leaving native code for Go each time, so a looping
	// guest can also never block the Go GC's stop-the-world.
	stopContext stopKind = iota
	// stopNone runs calls unbounded; only for measuring stopContext.
	stopNone
)

type stopper interface {
	// bound returns the context a call runs under.
	bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
	// needsCloseOnDone tells the runtime to compile termination checks.
	needsCloseOnDone() bool
}

func newStopper(k stopKind) stopper {
	if k == stopNone {
		return noStop{}
	}
	return ctxStop{}
}

type ctxStop struct{}

func (ctxStop) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func (ctxStop) needsCloseOnDone() bool { return true }

type noStop struct{}

func (noStop) bound(ctx context.Context, _ time.Duration) (context.Context, context.CancelFunc) {
	return ctx, func() {}
}

func (noStop) needsCloseOnDone() bool { return false }
