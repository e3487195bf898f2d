package host

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Loop-header instrumentation: the cheap stop mechanism.
//
// wazero's own mechanism (WithCloseOnContextDone) leaves native code for Go
// at every loop iteration and starts a goroutine per call: about 38 ns per
// iteration and 1.5 µs per call. Instead, instrument rewrites the module so
// that every loop header and function entry decrements a fuel global; when
// it reaches zero (every fuelChunk headers, a few microseconds of work) the
// guest runs memory.grow(0), which leaves native code for Go (a GC safe
// point, so a spinning guest never blocks the collector), then traps if the
// host raised the exported stop global, then refills its fuel. The host's
// watchdog raises the stop global at the call deadline. Modules the
// rewriter cannot parse (unknown opcodes) fall back to wazero's mechanism.

// Names of the injected exports; a module exporting them is not instrumented.
const (
	stopGlobalExport = "__purser_stop"
	// startExport replaces a start section, so that the host runs the
	// start function under the stop mechanism (in boot) rather than inside
	// instantiation, where no deadline can reach it yet.
	startExport = "__purser_start"
	fuelChunk   = 10000
)

var errNotInstrumentable = errors.New("module cannot be instrumented")

// wasm section ids and their canonical order (custom sections excepted).
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id      byte
	payload []byte
}

// instrument returns the rewritten module.
func instrument(bin []byte) ([]byte, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not a wasm 1.0 binary", errNotInstrumentable)
	}
	secs, err := splitSections(bin[8:])
	if err != nil {
		return nil, err
	}
	importedGlobals, hasMemory, err := scanImportsAndMemory(secs)
	if err != nil {
		return nil, err
	}
	if !hasMemory {
		return nil, fmt.Errorf("%w: no memory", errNotInstrumentable)
	}
	definedGlobals := uint32(0)
	for _, s := range secs {
		if s.id == 6 {
			definedGlobals, _, err = readU32(s.payload)
			if err != nil {
				return nil, err
			}
		}
	}
	fuel := importedGlobals + definedGlobals
	stop := fuel + 1
	check := checkSequence(fuel, stop)
	secs, err = withGlobals(secs, fuel)
	if err != nil {
		return nil, err
	}
	secs, start, err := withoutStart(secs)
	if err != nil {
		return nil, err
	}
	secs, err = withExports(secs, stop, start)
	if err != nil {
		return nil, err
	}
	for i := range secs {
		if secs[i].id == 10 {
			if secs[i].payload, err = instrumentCode(secs[i].payload, check); err != nil {
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

// scanImportsAndMemory counts imported globals (they precede defined ones
// in the index space) and whether the module defines a memory.
func scanImportsAndMemory(secs []section) (globals uint32, memory bool, err error) {
	for _, s := range secs {
		switch s.id {
		case 5:
			n, _, err := readU32(s.payload)
			if err != nil {
				return 0, false, err
			}
			memory = n > 0
		case 2:
			r := reader{b: s.payload}
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
					return 0, false, fmt.Errorf("%w: import kind %d", errNotInstrumentable, kind)
				}
			}
			if r.err != nil {
				return 0, false, r.err
			}
		}
	}
	return globals, memory, nil
}

// withGlobals appends the fuel and stop globals (mutable i32).
func withGlobals(secs []section, fuel uint32) ([]section, error) {
	defs := []byte{0x7F, 0x01, 0x41}
	defs = appendS32(defs, fuelChunk)
	defs = append(defs, 0x0B, 0x7F, 0x01, 0x41, 0x00, 0x0B)
	for i, s := range secs {
		if s.id == 6 {
			n, k, err := readU32(s.payload)
			if err != nil {
				return nil, err
			}
			p := appendU32(nil, n+2)
			p = append(p, s.payload[k:]...)
			secs[i].payload = append(p, defs...)
			return secs, nil
		}
	}
	return insertSection(secs, section{6, append([]byte{2}, defs...)}), nil
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

// withExports exports the stop global so the host can raise it, and the
// former start function.
func withExports(secs []section, stop uint32, start int64) ([]section, error) {
	exp := func(b []byte, name string, kind byte, idx uint32) []byte {
		b = appendU32(b, uint32(len(name)))
		b = append(b, name...)
		b = append(b, kind)
		return appendU32(b, idx)
	}
	entries, n := exp(nil, stopGlobalExport, 0x03, stop), uint32(1)
	if start >= 0 {
		entries, n = exp(entries, startExport, 0x00, uint32(start)), 2
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

// checkSequence is the code inserted at loop headers and function entries.
func checkSequence(fuel, stop uint32) []byte {
	var b []byte
	getFuel := appendU32([]byte{0x23}, fuel)
	setFuel := appendU32([]byte{0x24}, fuel)
	b = append(b, getFuel...)
	b = append(b, 0x41, 0x01, 0x6B) // i32.const 1; i32.sub
	b = append(b, setFuel...)
	b = append(b, getFuel...)
	b = append(b, 0x45, 0x04, 0x40)       // i32.eqz; if
	b = append(b, 0x41, 0x00, 0x40, 0x00) // i32.const 0; memory.grow 0 (leaves native code: GC safe point)
	b = append(b, 0x1A)                   // drop
	b = append(b, appendU32([]byte{0x23}, stop)...)
	b = append(b, 0x04, 0x40, 0x00, 0x0B) // if; unreachable; end
	b = append(b, 0x41)
	b = appendS32(b, fuelChunk)
	b = append(b, setFuel...)
	return append(b, 0x0B) // end
}

// instrumentCode rewrites every function body of the code section.
func instrumentCode(p []byte, check []byte) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	out := make([]byte, 0, len(p)+len(p)/4+int(n)*len(check))
	out = appendU32(out, n)
	var scratch []byte // reused body buffer
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("%w: truncated function body %d", errNotInstrumentable, i)
		}
		body, err := instrumentBody(scratch[:0], r.b[r.off:r.off+int(size)], check)
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

// instrumentBody appends the rewritten body to out.
func instrumentBody(out, body []byte, check []byte) ([]byte, error) {
	r := reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()
		r.valtype()
	}
	if r.err != nil {
		return nil, r.err
	}
	out = append(out, body[:r.off]...)
	out = append(out, check...) // function entry: bounds recursion too
	last := r.off
	for r.off < len(r.b) && r.err == nil {
		op := r.byte()
		if err := r.skipImmediates(op); err != nil {
			return nil, err
		}
		if op == 0x03 { // loop: check at the top of every iteration
			out = append(out, r.b[last:r.off]...)
			out = append(out, check...)
			last = r.off
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, r.b[last:]...), nil
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

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
