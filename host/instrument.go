package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Fuel metering: the host's stop mechanism and its deterministic measure
// of a call's work.
//
// instrument rewrites a module at load so that every function entry and
// loop header charges the instructions of its region (the function's code
// outside its loops, or one iteration of the loop's body outside nested
// loops) to a fuel counter, and memory.fill / memory.copy also charge
// their length. The charge is static per code point, so a call on the same
// instance state uses the same fuel on every run and every machine, and it
// is an upper bound on the instructions the call executed.
//
// The counter is two i64 globals: fuel, what is left of the current slice,
// and bank, the rest of the call's budget. The fast path is five
// instructions (subtract, store, compare with zero, branch). When a slice
// runs out the guest takes the slow path: memory.grow(0), which leaves
// native code for Go (a GC safe point, so a long call never stalls the
// collector for more than one slice), a trap if the host raised the stop
// global (the deadline backstop), a trap if bank+fuel < 0 (the budget is
// spent: the host reads the globals and reports ErrFuelExhausted), else a
// refill of min(slice, bank+fuel). The trap happens at the first charge
// that takes the call past its budget, whatever the slice size.

// Names of the injected exports; a module exporting any __purser_ name is
// refused.
const (
	fuelGlobalExport = "__purser_fuel"
	bankGlobalExport = "__purser_fuel_bank"
	stopGlobalExport = "__purser_stop"
	// startExport replaces a start section, so that the host runs the
	// start function under fuel (in boot) rather than inside
	// instantiation, where no budget is set yet.
	startExport = "__purser_start"
)

// instrumenterVersion changes whenever the rewrite changes what a module
// is charged or how; it keys the instrumented-module cache.
const instrumenterVersion = 2

// FuelCosts is the fuel cost table: what the instrumenter charges. Fuel is
// counted in these units; with the defaults one unit is one Wasm
// instruction.
type FuelCosts struct {
	// Instruction is charged per instruction of a region.
	Instruction int64
	// MemoryGrow is charged per memory.grow instruction (it may allocate
	// and zero megabytes).
	MemoryGrow int64
	// BulkBytesPerUnit: memory.fill and memory.copy charge one unit per
	// this many bytes (a power of two), on top of their instruction cost.
	BulkBytesPerUnit int64
	// Slice is how much fuel a guest burns between two GC safe points;
	// it bounds how long a call can delay the Go collector. It does not
	// change what a call is charged.
	Slice int64
}

// DefaultFuelCosts is the cost table purser ships; see BENCHMARKS.md for
// the measurement behind Slice.
func DefaultFuelCosts() FuelCosts {
	return FuelCosts{Instruction: 1, MemoryGrow: 1000, BulkBytesPerUnit: 16, Slice: 1_000_000}
}

func (c FuelCosts) validate() error {
	switch {
	case c.Instruction < 1 || c.Instruction > 1<<20:
		return fmt.Errorf("fuel cost per instruction %d is outside [1, 2^20]", c.Instruction)
	case c.MemoryGrow < 0 || c.MemoryGrow > 1<<30:
		return fmt.Errorf("fuel cost per memory.grow %d is outside [0, 2^30]", c.MemoryGrow)
	case c.BulkBytesPerUnit < 1 || c.BulkBytesPerUnit > 1<<20 || c.BulkBytesPerUnit&(c.BulkBytesPerUnit-1) != 0:
		return fmt.Errorf("bulk bytes per fuel unit %d is not a power of two in [1, 2^20]", c.BulkBytesPerUnit)
	case c.Slice < 1000 || c.Slice > 1<<40:
		return fmt.Errorf("fuel slice %d is outside [1000, 2^40]", c.Slice)
	}
	return nil
}

// key identifies the instrumentation for the cache: version and costs.
func (c FuelCosts) key() string {
	var b []byte
	b = binary.AppendUvarint(b, instrumenterVersion)
	for _, v := range []int64{c.Instruction, c.MemoryGrow, c.BulkBytesPerUnit, c.Slice} {
		b = binary.AppendVarint(b, v)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("v%d-%s", instrumenterVersion, hex.EncodeToString(sum[:6]))
}

// errNotInstrumentable is ErrNotMeterable: such modules are refused at load.
var errNotInstrumentable = ErrNotMeterable

// wasm section ids and their canonical order (custom sections excepted).
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id      byte
	payload []byte
}

// globals are the indices of the injected globals.
type globals struct{ fuel, bank, stop uint32 }

// instrument returns the rewritten module.
func instrument(bin []byte, costs FuelCosts) ([]byte, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not a wasm 1.0 binary", errNotInstrumentable)
	}
	secs, err := splitSections(bin[8:])
	if err != nil {
		return nil, err
	}
	mi, err := scanModule(secs)
	if err != nil {
		return nil, err
	}
	if !mi.memory {
		return nil, fmt.Errorf("%w: no memory", errNotInstrumentable)
	}
	first := mi.importedGlobals + mi.definedGlobals
	g := globals{fuel: first, bank: first + 1, stop: first + 2}
	secs, err = withGlobals(secs)
	if err != nil {
		return nil, err
	}
	secs, start, err := withoutStart(secs)
	if err != nil {
		return nil, err
	}
	secs, err = withExports(secs, g, start)
	if err != nil {
		return nil, err
	}
	rw := rewriter{g: g, costs: costs, mi: mi}
	for i := range secs {
		if secs[i].id == 10 {
			if secs[i].payload, err = rw.code(secs[i].payload); err != nil {
				return nil, err
			}
		}
	}
	out := append([]byte(nil), bin[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.payload)))
		out = append(out, s.payload...)
	}
	return out, nil
}

func splitSections(b []byte) ([]section, error) {
	var secs []section
	for len(b) > 0 {
		id := b[0]
		n, k, err := readU32(b[1:])
		if err != nil || uint64(n) > uint64(len(b)-1-k) {
			return nil, fmt.Errorf("%w: truncated section %d", errNotInstrumentable, id)
		}
		secs = append(secs, section{id, b[1+k : 1+k+int(n)]})
		b = b[1+k+int(n):]
	}
	return secs, nil
}

// moduleInfo is what the rewriter needs from the other sections.
type moduleInfo struct {
	importedGlobals uint32
	definedGlobals  uint32
	memory          bool
	typeParams      []uint32 // params per function type
	funcTypes       []uint32 // type index per defined function
}

func scanModule(secs []section) (mi moduleInfo, err error) {
	for _, s := range secs {
		r := reader{b: s.payload}
		switch s.id {
		case 1:
			mi.typeParams = r.types()
		case 2:
			mi.importedGlobals = r.importedGlobals()
		case 3:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				mi.funcTypes = append(mi.funcTypes, r.u32())
			}
		case 5:
			mi.memory = r.u32() > 0
		case 6:
			mi.definedGlobals = r.u32()
		}
		if r.err != nil {
			return mi, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	for _, t := range mi.funcTypes {
		if int(t) >= len(mi.typeParams) {
			return mi, fmt.Errorf("%w: function type %d out of range", errNotInstrumentable, t)
		}
	}
	return mi, nil
}

// types reads the type section: the parameter count of each function type.
func (r *reader) types() []uint32 {
	n := r.u32()
	var params []uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		if form := r.byte(); form != 0x60 {
			r.fail("type form 0x%02x (only function types are supported)", form)
			break
		}
		np := r.u32()
		for j := uint32(0); j < np && r.err == nil; j++ {
			r.valtype()
		}
		nr := r.u32()
		for j := uint32(0); j < nr && r.err == nil; j++ {
			r.valtype()
		}
		params = append(params, np)
	}
	return params
}

// importedGlobals counts imported globals: they precede defined ones in
// the index space.
func (r *reader) importedGlobals() (globals uint32) {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0: // func: type index
			r.u32()
		case 1: // table: reftype + limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype + mut
			r.byte()
			r.byte()
			globals++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			r.fail("import kind %d", kind)
		}
	}
	return globals
}

// withGlobals appends fuel and bank (mutable i64, 0) and stop (mutable
// i32, 0); the host sets them before every call.
func withGlobals(secs []section) ([]section, error) {
	defs := []byte{
		0x7E, 0x01, 0x42, 0x00, 0x0B, // fuel
		0x7E, 0x01, 0x42, 0x00, 0x0B, // bank
		0x7F, 0x01, 0x41, 0x00, 0x0B, // stop
	}
	for i, s := range secs {
		if s.id == 6 {
			n, k, err := readU32(s.payload)
			if err != nil {
				return nil, err
			}
			p := appendU32(nil, n+3)
			p = append(p, s.payload[k:]...)
			secs[i].payload = append(p, defs...)
			return secs, nil
		}
	}
	return insertSection(secs, section{6, append([]byte{3}, defs...)}), nil
}

// withoutStart removes the start section and returns its function index
// (-1 when there is none).
func withoutStart(secs []section) ([]section, int64, error) {
	for i, s := range secs {
		if s.id == 8 {
			fn, _, err := readU32(s.payload)
			if err != nil {
				return nil, 0, err
			}
			return append(secs[:i:i], secs[i+1:]...), int64(fn), nil
		}
	}
	return secs, -1, nil
}

// withExports exports the injected globals so the host can set and read
// them, and the former start function.
func withExports(secs []section, g globals, start int64) ([]section, error) {
	exp := func(b []byte, name string, kind byte, idx uint32) []byte {
		b = appendU32(b, uint32(len(name)))
		b = append(b, name...)
		b = append(b, kind)
		return appendU32(b, idx)
	}
	entries := exp(nil, fuelGlobalExport, 0x03, g.fuel)
	entries = exp(entries, bankGlobalExport, 0x03, g.bank)
	entries, n := exp(entries, stopGlobalExport, 0x03, g.stop), uint32(3)
	if start >= 0 {
		entries, n = exp(entries, startExport, 0x00, uint32(start)), n+1
	}
	for i, s := range secs {
		if s.id == 7 {
			count, k, err := readU32(s.payload)
			if err != nil {
				return nil, err
			}
			if bytes.Contains(s.payload, []byte("__purser_")) {
				return nil, fmt.Errorf("%w: exports a reserved __purser_ name", errNotInstrumentable)
			}
			p := appendU32(nil, count+n)
			p = append(p, s.payload[k:]...)
			secs[i].payload = append(p, entries...)
			return secs, nil
		}
	}
	return insertSection(secs, section{7, append(appendU32(nil, n), entries...)}), nil
}

// insertSection puts s before the first known section that must follow it.
func insertSection(secs []section, s section) []section {
	for i, x := range secs {
		if x.id != 0 && sectionOrder[x.id] > sectionOrder[s.id] {
			return append(secs[:i], append([]section{s}, secs[i:]...)...)
		}
	}
	return append(secs, s)
}

// rewriter instruments function bodies. Its slices are scratch space
// reused across bodies.
type rewriter struct {
	g      globals
	costs  FuelCosts
	mi     moduleInfo
	points []point
}

// point is where metering code goes: before the instruction at off.
type point struct {
	off  int
	cost int64
	kind pointKind
}

type pointKind uint8

const (
	// pointCharge starts a straight-line run: fuel -= its cost. No test:
	// a run without loops or calls ends by itself.
	pointCharge pointKind = iota
	// pointCheck starts a run at a function entry or loop header, where
	// every unbounded execution passes: charge, then test the fuel.
	pointCheck
	// pointBulk precedes memory.fill/copy: charge the length, and test.
	pointBulk
)

// code rewrites every function body of the code section.
func (rw *rewriter) code(p []byte) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	if r.err == nil && int(n) != len(rw.mi.funcTypes) {
		return nil, fmt.Errorf("%w: %d bodies for %d functions", errNotInstrumentable, n, len(rw.mi.funcTypes))
	}
	out := make([]byte, 0, len(p)+len(p)/2)
	out = appendU32(out, n)
	var scratch []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("%w: truncated function body %d", errNotInstrumentable, i)
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
			return nil, fmt.Errorf("%w: too many locals to add a scratch one", errNotInstrumentable)
		}
		out = appendU32(out, groups+1) // a scratch i32 for bulk lengths
		out = append(out, body[len(appendU32(nil, groups)):codeStart]...)
		out = append(out, 0x01, 0x7F)
	} else {
		out = append(out, body[:codeStart]...)
	}
	last := codeStart
	for _, p := range rw.points {
		if p.kind == pointCharge && p.cost == 0 {
			continue
		}
		out = append(out, body[last:p.off]...)
		switch p.kind {
		case pointCharge:
			out = rw.charge(out, p.cost)
		case pointCheck:
			out = rw.test(rw.charge(out, p.cost))
		case pointBulk:
			out = rw.test(rw.bulkCharge(out, tmp))
		}
		last = p.off
	}
	return append(out, body[last:]...), nil
}

// analyse walks the instructions once, splitting the body into
// straight-line runs (a run ends at every branch and branch target) and
// summing each run's cost. Code after br, br_table, return or unreachable
// is dead until the enclosing block's else or end: it costs nothing. It
// reports whether the body has bulk memory operations.
func (rw *rewriter) analyse(r *reader) (bulk bool, err error) {
	rw.points = append(rw.points[:0], point{off: r.off, kind: pointCheck})
	cur, depth, deadDepth, dead, entryCalls := 0, 1, 0, false, false
	for r.off < len(r.b) && r.err == nil {
		if depth == 0 {
			return false, fmt.Errorf("%w: code after the function's end at byte %d", errNotInstrumentable, r.off)
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
		case op == 0xFC && (sub == 10 || sub == 11): // memory.copy, memory.fill
			rw.points = append(rw.points, point{off: start, kind: pointBulk})
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
		return false, fmt.Errorf("%w: function body ends inside a block", errNotInstrumentable)
	}
	return bulk, nil
}

// weight is an instruction's fuel. Structure (block, loop, else, end) is
// free: it is not executed as such.
func (rw *rewriter) weight(op byte) int64 {
	switch op {
	case 0x02, 0x03, 0x05, 0x0B:
		return 0
	case 0x40:
		return rw.costs.MemoryGrow + rw.costs.Instruction
	}
	return rw.costs.Instruction
}

// charge appends: fuel -= c.
func (rw *rewriter) charge(out []byte, c int64) []byte {
	out = rw.getG(out, rw.g.fuel)
	out = append(out, 0x42)
	out = appendS64(out, c)
	out = append(out, 0x7D) // i64.sub
	return rw.setG(out, rw.g.fuel)
}

// bulkCharge appends, before memory.fill/copy (length on the stack):
// fuel -= length / BulkBytesPerUnit.
func (rw *rewriter) bulkCharge(out []byte, tmp uint32) []byte {
	out = appendU32(append(out, 0x22), tmp) // local.tee: the length stays
	out = rw.getG(out, rw.g.fuel)
	out = appendU32(append(out, 0x20), tmp)
	out = append(out, 0xAD, 0x42) // i64.extend_i32_u; i64.const
	out = appendS64(out, int64(bitsLen(rw.costs.BulkBytesPerUnit)))
	out = append(out, 0x88, 0x7D) // i64.shr_u; i64.sub
	return rw.setG(out, rw.g.fuel)
}

// test takes the slow path when the fuel is negative.
func (rw *rewriter) test(out []byte) []byte {
	out = rw.getG(out, rw.g.fuel)
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40) // i64.const 0; i64.lt_s; if
	out = rw.slow(out)
	return append(out, 0x0B)
}

// slow is the refill: safe point, stop flag, budget check, next slice.
func (rw *rewriter) slow(out []byte) []byte {
	g := rw.g
	total := func(out []byte) []byte { return append(rw.getG(rw.getG(out, g.bank), g.fuel), 0x7C) } // bank + fuel
	out = append(out, 0x41, 0x00, 0x40, 0x00, 0x1A)                                                 // memory.grow(0); drop: leaves native code
	out = append(rw.getG(out, g.stop), 0x04, 0x40, 0x00, 0x0B)                                      // if stop { unreachable }
	out = append(total(out), 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0B)
	sliceConst := appendS64([]byte{0x42}, rw.costs.Slice)
	out = append(append(total(out), sliceConst...), 0x53, 0x04, 0x40)      // if total < slice
	out = rw.setG(total(out), g.fuel)                                      //   fuel = total
	out = rw.setG(append(out, 0x42, 0x00), g.bank)                         //   bank = 0
	out = append(out, 0x05)                                                // else
	out = rw.setG(append(append(total(out), sliceConst...), 0x7D), g.bank) // bank = total - slice
	out = rw.setG(append(out, sliceConst...), g.fuel)                      // fuel = slice
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

// reader decodes just enough of the binary format to find instruction
// boundaries. The first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", errNotInstrumentable, fmt.Sprintf(format, args...), r.off)
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) u32() uint32 {
	v, k, err := readU32(r.b[min(r.off, len(r.b)):])
	if err != nil {
		r.fail("bad LEB128")
		return 0
	}
	r.off += k
	return v
}

// leb skips a (signed or unsigned) LEB128 of up to 10 bytes.
func (r *reader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("LEB128 too long")
}

func (r *reader) skip(n int) {
	if n > len(r.b)-r.off {
		r.fail("unexpected end")
		return
	}
	r.off += n
}

func (r *reader) name() { r.skip(int(r.u32())) }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// valtype accepts the single-byte value types (numbers, v128, funcref,
// externref, exnref); typed references need the GC proposal: not supported.
func (r *reader) valtype() {
	switch t := r.byte(); t {
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F, 0x69:
	default:
		r.fail("value type 0x%02x", t)
	}
}

func (r *reader) blocktype() {
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return
	}
	switch r.b[r.off] {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F, 0x69:
		r.off++
	default:
		r.leb() // type index (s33)
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: memory index follows
		r.u32()
	}
	r.leb()
}

// Immediate shapes of single-byte opcodes, for the fast path of
// skipImmediates (the rewriter walks every instruction of the module).
const (
	immSlow  = iota // decided by the switch below
	immNone         // no immediate
	immU32          // one LEB128 index
	immMem          // memarg
	immConst        // one signed LEB128 constant
)

var immTable = func() (t [256]uint8) {
	for op := 0x45; op <= 0xC4; op++ {
		t[op] = immNone
	}
	for _, op := range []int{0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3} {
		t[op] = immNone
	}
	for _, op := range []int{0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3F, 0x40, 0xD2, 0xD4, 0xD6} {
		t[op] = immU32
	}
	for op := 0x28; op <= 0x3E; op++ {
		t[op] = immMem
	}
	t[0x41], t[0x42] = immConst, immConst
	return t
}()

// skipImmediates advances past op's immediates.
func (r *reader) skipImmediates(op byte) error {
	switch immTable[op] {
	case immNone:
		return nil
	case immU32, immConst:
		r.leb()
		return r.err
	case immMem:
		r.memarg()
		return r.err
	}
	switch {
	case op <= 0x01, op == 0x05, op == 0x0A, op == 0x0B, op == 0x0F, op == 0x19,
		op == 0x1A, op == 0x1B, op >= 0x45 && op <= 0xC4, op == 0xD1, op == 0xD3:
	case op >= 0x02 && op <= 0x04, op == 0x06:
		r.blocktype()
	case op == 0x07, op == 0x08, op == 0x09, op == 0x0C, op == 0x0D, op == 0x10, op == 0x12,
		op == 0x14, op == 0x15, op == 0x18, op >= 0x20 && op <= 0x26, op == 0xD2, op == 0xD4, op == 0xD6:
		r.u32()
	case op == 0x0E: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11, op == 0x13: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1C: // select t*
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valtype()
		}
	case op == 0x1F: // try_table
		r.blocktype()
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if kind := r.byte(); kind <= 1 {
				r.u32() // tag
			}
			r.u32() // label
		}
	case op >= 0x28 && op <= 0x3E:
		r.memarg()
	case op == 0x3F, op == 0x40:
		r.u32()
	case op == 0x41, op == 0x42:
		r.leb()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xD0:
		r.blocktype() // heap type: one byte or s33
	case op == 0xFC:
		r.skipFC(r.u32())
	case op == 0xFD:
		r.skipFD(r.u32())
	case op == 0xFE:
		if sub := r.u32(); sub == 0x03 {
			r.byte() // atomic.fence
		} else {
			r.memarg()
		}
	default:
		r.fail("opcode 0x%02x", op)
	}
	return r.err
}

func (r *reader) skipFC(sub uint32) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
		r.u32()
	default:
		r.fail("opcode 0xfc %d", sub)
	}
}

func (r *reader) skipFD(sub uint32) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // lane extract/replace
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		r.memarg()
		r.byte()
	case sub <= 275:
	default:
		r.fail("opcode 0xfd %d", sub)
	}
}

func readU32(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xFFFFFFFF {
				break
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: bad LEB128", errNotInstrumentable)
}

func appendU32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func (c FuelCosts) or(base FuelCosts) FuelCosts {
	if c.Instruction == 0 {
		c.Instruction = base.Instruction
	}
	if c.MemoryGrow == 0 {
		c.MemoryGrow = base.MemoryGrow
	}
	if c.BulkBytesPerUnit == 0 {
		c.BulkBytesPerUnit = base.BulkBytesPerUnit
	}
	if c.Slice == 0 {
		c.Slice = base.Slice
	}
	return c
}
