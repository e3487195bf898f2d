package host

import "fmt"

// rewriter instruments function bodies. Its slices are scratch space
// reused across bodies.
type rewriter struct {
	fuel   uint32 // the fuel global
	stop   uint32 // the stop global: 0, or above any fuel once the watchdog stopped the call
	refill uint32 // the refill import
	costs  FuelCosts
	mi     moduleInfo
	sh     shifter
	points []point
}

// point is where metering code goes: before the instruction at off.
type point struct {
	off  int
	end  int // pointFunc: where the immediate ends
	cost int64
	kind pointKind
	bulk bulkUnit // pointBulk: what the size operand counts
}

// bulkUnit is what a bulk operation's size operand (an i32 on top of the
// stack for all eight) counts, which sets its price.
type bulkUnit uint8

const (
	bulkBytes     bulkUnit = iota // memory.fill, memory.copy, memory.init
	bulkElems                     // table.fill, table.copy, table.init
	bulkGrowElems                 // table.grow
	bulkPages                     // memory.grow
)

type pointKind uint8

const (
	// pointCharge starts a straight-line run: fuel -= its cost. No test:
	// a run without loops or calls ends by itself.
	pointCharge pointKind = iota
	// pointCheck starts a run at a function entry or loop header, where
	// every unbounded execution passes: charge, then test the fuel.
	pointCheck
	// pointBulk precedes a bulk operation: charge its size, and test, so
	// that an operation larger than the fuel left never starts.
	pointBulk
	// pointFunc is a function index immediate (call, return_call,
	// ref.func) ending at end, rewritten for the new numbering.
	pointFunc
)

// code rewrites every function body of the code section.
func (rw *rewriter) code(p []byte) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	if r.err == nil && int(n) != len(rw.mi.funcTypes) {
		return nil, fmt.Errorf("%w: %d bodies for %d functions", ErrNotMeterable, n, len(rw.mi.funcTypes))
	}
	out := make([]byte, 0, len(p)+len(p)/2)
	out = appendU32(out, n)
	var scratch []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("%w: truncated function body %d", ErrNotMeterable, i)
		}
		params := rw.mi.typeParams[rw.mi.funcTypes[i]]
		body, err := rw.body(scratch[:0], r.b[r.off:r.off+int(size)], params)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		scratch = body
		r.off += int(size)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// body appends the rewritten body to out.
func (rw *rewriter) body(out, body []byte, params uint32) ([]byte, error) {
	r := reader{b: body}
	groups := r.u32()
	locals := uint64(params)
	for i := uint32(0); i < groups && r.err == nil; i++ {
		locals += uint64(r.u32())
		r.valtype()
	}
	if r.err != nil {
		return nil, r.err
	}
	codeStart := r.off
	bulk, err := rw.analyse(&r)
	if err != nil {
		return nil, err
	}
	tmp := uint32(locals)
	if bulk {
		if locals >= 50000 { // wazero's own limit on locals is 50 000
			return nil, fmt.Errorf("%w: too many locals to add a scratch one", ErrNotMeterable)
		}
		out = appendU32(out, groups+1)
		out = append(out, body[len(appendU32(nil, groups)):codeStart]...)
		out = append(out, 0x01, 0x7F) // a scratch i32 for bulk sizes
	} else {
		out = append(out, body[:codeStart]...)
	}
	last := codeStart
	for _, p := range rw.points {
		if p.kind == pointCharge && p.cost == 0 {
			continue
		}
		out = append(out, body[last:p.off]...)
		last = p.off
		switch p.kind {
		case pointCharge:
			out = rw.charge(out, p.cost)
		case pointCheck:
			out = rw.test(rw.charge(out, p.cost))
		case pointBulk:
			out = rw.test(rw.bulkCharge(out, tmp, p.bulk))
		case pointFunc:
			idx, _, _ := readU32(body[p.off:p.end]) // decoded once already
			out = appendU32(out, rw.sh.fn(idx))
			last = p.end
		}
	}
	return append(out, body[last:]...), nil
}

// analyse walks the instructions once, splitting the body into
// straight-line runs (a run ends at every branch and branch target) and
// summing each run's cost. Code after br, br_table, return or unreachable
// is dead until the enclosing block's else or end: it costs nothing. It
// reports whether the body has bulk operations.
func (rw *rewriter) analyse(r *reader) (bulk bool, err error) {
	rw.points = append(rw.points[:0], point{off: r.off, kind: pointCheck})
	cur, depth, deadDepth, dead, entryCalls := 0, 1, 0, false, false
	for r.off < len(r.b) && r.err == nil {
		if depth == 0 {
			return false, fmt.Errorf("%w: code after the function's end at byte %d", ErrNotMeterable, r.off)
		}
		start := r.off
		op := r.byte()
		var sub uint32
		if op == 0xFC {
			sub = r.u32()
			r.skipFC(sub)
		} else if err := r.skipImmediates(op); err != nil {
			return false, err
		}
		opens := op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06 || op == 0x1F
		if op == 0x10 || op == 0x12 || op == 0xD2 { // call, return_call, ref.func: renumber, dead or not
			rw.points = append(rw.points, point{off: start + 1, end: r.off, kind: pointFunc})
		}
		if dead { // only nesting matters until the dead code ends
			switch {
			case opens:
				deadDepth++
				continue
			case (op == 0x0B || op == 0x05) && deadDepth > 0:
				if op == 0x0B {
					deadDepth--
				}
				continue
			case op != 0x0B && op != 0x05:
				continue
			}
			dead = false
		}
		rw.points[cur].cost += rw.weight(op)
		if cur == 0 && op >= 0x10 && op <= 0x13 { // call, call_indirect, return_call*
			entryCalls = true
		}

		newRun := pointCharge
		switch {
		case opens:
			depth++
			if op == 0x02 || op == 0x06 || op == 0x1F {
				continue // entering a block is not a branch
			}
			if op == 0x03 {
				newRun = pointCheck // loop header
				if cur == 0 && !entryCalls {
					// The entry run reaches this loop's test without
					// calling anything: its own test is redundant (Go
					// guests open every function with a dispatch loop).
					rw.points[0].kind = pointCharge
				}
			}
		case op == 0x0B:
			if depth--; depth == 0 {
				continue
			}
		case op == 0x05, op == 0x0D, op == 0xD5, op == 0xD6: // else, br_if, br_on_null, br_on_non_null
		case op == 0x00, op == 0x0C, op == 0x0E, op == 0x0F, op == 0x12, op == 0x13: // unreachable, br, br_table, return, return_call*
			dead = true
			continue
		case rw.costs.baseline && !(op == 0xFC && (sub == 10 || sub == 11)):
			continue // before issue 12 only memory.copy/fill charged their size
		case op == 0x40 || op == 0xFC && sub < uint32(len(bulkOps)) && bulkOps[sub] != 0:
			u := bulkPages
			if op == 0xFC {
				u = bulkOps[sub] - 1
			}
			rw.points = append(rw.points, point{off: start, kind: pointBulk, bulk: u})
			bulk = true
			continue
		default:
			continue
		}
		rw.points = append(rw.points, point{off: r.off, kind: newRun})
		cur = len(rw.points) - 1
	}
	if r.err != nil {
		return false, r.err
	}
	if depth != 0 {
		return false, fmt.Errorf("%w: function body ends inside a block", ErrNotMeterable)
	}
	return bulk, nil
}

// bulkOps maps the 0xFC sub-opcodes of bulk operations to their unit,
// plus one (0: not a bulk operation).
var bulkOps = [32]bulkUnit{
	8: bulkBytes + 1, 10: bulkBytes + 1, 11: bulkBytes + 1, // memory.init, memory.copy, memory.fill
	12: bulkElems + 1, 14: bulkElems + 1, 17: bulkElems + 1, // table.init, table.copy, table.fill
	15: bulkGrowElems + 1, // table.grow
}

// weight is an instruction's fuel. Structure (block, loop, else, end) is
// free: it is not executed as such.
func (rw *rewriter) weight(op byte) int64 {
	switch op {
	case 0x02, 0x03, 0x05, 0x0B:
		return 0
	}
	return rw.costs.Instruction
}

// charge appends: fuel -= c.
func (rw *rewriter) charge(out []byte, c int64) []byte {
	out = rw.getG(out, rw.fuel)
	out = append(out, 0x42)
	out = appendS64(out, c)
	out = append(out, 0x7D) // i64.sub
	return rw.setG(out, rw.fuel)
}

// bulkCharge appends, before a bulk operation (its size, an i32, on top
// of the stack): fuel -= size / BulkBytesPerUnit for bytes, else size
// times the cost per table element or page.
// The size is below 2^32 and the multipliers at most 2^20: no overflow.
func (rw *rewriter) bulkCharge(out []byte, tmp uint32, u bulkUnit) []byte {
	out = appendU32(append(out, 0x22), tmp) // local.tee: the size stays
	out = rw.getG(out, rw.fuel)
	out = appendU32(append(out, 0x20), tmp)
	out = append(out, 0xAD) // i64.extend_i32_u
	mul := rw.costs.TableBulkPerElement
	switch u {
	case bulkBytes:
		mul = 1
		if sh := bitsLen(rw.costs.BulkBytesPerUnit); sh > 0 {
			out = append(appendS64(append(out, 0x42), int64(sh)), 0x88) // i64.const; i64.shr_u
		}
	case bulkGrowElems:
		mul = rw.costs.TableGrowPerElement
	case bulkPages:
		mul = rw.costs.MemoryGrowPerPage
	}
	if mul != 1 {
		out = append(appendS64(append(out, 0x42), mul), 0x7E) // i64.const; i64.mul
	}
	out = append(out, 0x7D) // i64.sub
	return rw.setG(out, rw.fuel)
}

// test appends: if fuel < stop { fuel = refill(fuel) }. stop is 0 until
// the watchdog raises it: as cheap as comparing with a constant.
func (rw *rewriter) test(out []byte) []byte {
	out = rw.getG(out, rw.fuel)
	if rw.costs.baseline {
		out = append(out, 0x42, 0x00) // i64.const 0
	} else {
		out = rw.getG(out, rw.stop)
	}
	out = append(out, 0x53, 0x04, 0x40) // i64.lt_s; if
	out = rw.getG(out, rw.fuel)
	out = appendU32(append(out, 0x10), rw.refill) // call refill
	out = rw.setG(out, rw.fuel)
	return append(out, 0x0B)
}

func (rw *rewriter) getG(out []byte, idx uint32) []byte { return appendU32(append(out, 0x23), idx) }
func (rw *rewriter) setG(out []byte, idx uint32) []byte { return appendU32(append(out, 0x24), idx) }

// bitsLen is log2 of a power of two.
func bitsLen(v int64) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}
