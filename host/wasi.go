package host

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// WASI calls whose host work grows with their arguments are charged that
// work in fuel, before wazero does it (issue 12: a 16 MB random_get is
// ~10 ms of host work; at one unit per call a guest could spend its whole
// deadline in host calls without using fuel). The charge is taken in the
// host function's path (a FunctionListener on the WASI host module), not
// in the instrumented caller, so a call_indirect to the import pays too.
// It depends only on the call's arguments and the guest's memory, so the
// same call always costs the same fuel. ABI.md section 7a lists the prices.

// wasiVectorCost is the fuel per iovec (or poll subscription): wazero
// reads the 8-byte entry, bounds-checks its buffer and makes one Write or
// Read call, ~15 ns (2 M iovecs take ~30 ms), about 16 simple instructions.
const wasiVectorCost = 16

// wasiPrice is how a WASI function's work grows: the vectors it walks
// (iovecs, poll subscriptions) and the bytes it moves.
type wasiPrice struct {
	vectors func(params []uint64) int64
	bytes   func(mem api.Memory, params []uint64) int64
}

// wasiPriced returns the price of a WASI function, false for those whose
// work does not depend on their arguments (they cost one unit, the call).
func wasiPriced(name string) (wasiPrice, bool) {
	none := func([]uint64) int64 { return 0 }
	switch name {
	case "random_get": // (buf, buf_len)
		return wasiPrice{none, func(_ api.Memory, p []uint64) int64 { return int64(uint32(p[1])) }}, true
	case "fd_write", "fd_read", "fd_pwrite", "fd_pread": // (fd, iovs, iovs_len, ...)
		return wasiPrice{
			func(p []uint64) int64 { return int64(uint32(p[2])) },
			func(mem api.Memory, p []uint64) int64 { return iovecBytes(mem, uint32(p[1]), uint32(p[2])) },
		}, true
	case "poll_oneoff": // (in, out, nsubscriptions, nevents)
		return wasiPrice{func(p []uint64) int64 { return int64(uint32(p[2])) }, func(api.Memory, []uint64) int64 { return 0 }}, true
	}
	return wasiPrice{}, false
}

// iovecBytes sums the lengths the iovecs at iovs ask for, as claimed (a
// length past the end of memory is charged; wazero then fails the call
// with EFAULT). Entries outside memory are not summed: wazero stops at
// the first of them.
func iovecBytes(mem api.Memory, iovs, n uint32) int64 {
	if mem == nil {
		return 0
	}
	size := uint64(mem.Size())
	if uint64(iovs) >= size {
		return 0
	}
	n = uint32(min(uint64(n), (size-uint64(iovs))/8))
	b, ok := mem.Read(iovs, n*8)
	if !ok {
		return 0
	}
	var sum int64
	for i := uint32(0); i < n; i++ {
		sum += int64(binary.LittleEndian.Uint32(b[8*i+4:]))
	}
	return sum
}

// wasiFuelContext returns ctx with a listener factory that charges the
// priced WASI functions to the calling instance. Use it only to
// instantiate the WASI host module of a runtime for instrumented modules.
func (h *Host) wasiFuelContext(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, experimental.FunctionListenerFactoryFunc(
		func(def api.FunctionDefinition) experimental.FunctionListener {
			price, ok := wasiPriced(def.Name())
			if !ok {
				return nil // wazero skips functions without a listener
			}
			return experimental.FunctionListenerFunc(func(_ context.Context, m api.Module, _ api.FunctionDefinition, params []uint64, _ experimental.StackIterator) {
				in, ok := h.live.Load(m.Name())
				if !ok {
					return
				}
				inst := in.(*instance)
				// The vectors first: summing their lengths is work of their size.
				inst.chargeHost(price.vectors(params) * wasiVectorCost)
				inst.chargeHost(price.bytes(m.Memory(), params) / h.cfg.FuelCosts.BulkBytesPerUnit)
			})
		}))
}

// chargeHost takes cost units of the call's remaining fuel (the slice in
// the guest's fuel global first, then the bank) before a host function
// does the work they pay for. A charge above what is left fails the call
// with ErrFuelExhausted, leaving the fuel used past the budget as refill
// does, so the call is reported out of fuel with the charge counted.
func (in *instance) chargeHost(cost int64) {
	if in.fuelG == nil || cost <= 0 {
		return
	}
	fuel := int64(in.fuelG.Get())
	if left := fuel + in.bank; cost > left {
		in.fuelG.Set(uint64(left - cost))
		in.bank = 0
		panic(ErrFuelExhausted)
	}
	if cost <= fuel {
		in.fuelG.Set(uint64(fuel - cost))
		return
	}
	// The slice is spent (or already negative): the bank pays the rest and
	// the guest's next fuel test refills the slice from it.
	in.bank -= cost - max(fuel, 0)
	in.fuelG.Set(uint64(min(fuel, 0)))
}
