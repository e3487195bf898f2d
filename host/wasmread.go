package host

import (
	"encoding/binary"
	"fmt"
)

// reader decodes just enough of the binary format to find instruction
// boundaries. The first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", ErrNotMeterable, fmt.Sprintf(format, args...), r.off)
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
	return 0, 0, fmt.Errorf("%w: bad LEB128", ErrNotMeterable)
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

// str reads a name as a string.
func (r *reader) str() string {
	n := int(r.u32())
	if n > len(r.b)-r.off {
		r.fail("unexpected end")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}
