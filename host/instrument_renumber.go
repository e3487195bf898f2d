package host

import "fmt"

// shifter renumbers functions: the injected import takes index refill, so
// every function at or above it moves up by one.
type shifter struct{ refill uint32 }

func (s shifter) fn(i uint32) uint32 {
	if i >= s.refill {
		return i + 1
	}
	return i
}

// rewriteEach rewrites every entry of the vector section id with f, which
// reads one entry from r and appends its rewritten form to out.
func (s shifter) rewriteEach(secs []section, id byte, f func(r *reader, out []byte) []byte) ([]section, error) {
	for i := range secs {
		if secs[i].id != id {
			continue
		}
		r := reader{b: secs[i].payload}
		n := r.u32()
		out := appendU32(make([]byte, 0, len(r.b)+8), n)
		for j := uint32(0); j < n && r.err == nil; j++ {
			out = f(&r, out)
		}
		if r.err == nil && r.off != len(r.b) {
			r.fail("%d trailing bytes", len(r.b)-r.off)
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		secs[i].payload = out
	}
	return secs, nil
}

// global copies a global's type and renumbers its initialiser.
func (s shifter) global(r *reader, out []byte) []byte {
	start := r.off
	r.valtype()
	r.byte() // mutability
	out = append(out, r.b[start:r.off]...)
	return s.constExpr(r, out)
}

func (s shifter) export(r *reader, out []byte) []byte {
	start := r.off
	r.name()
	kind := r.byte()
	out = append(out, r.b[start:r.off]...)
	idx := r.u32()
	if kind == 0x00 {
		idx = s.fn(idx)
	}
	return appendU32(out, idx)
}

// element renumbers an element segment; flags select its form: bit 0
// passive or declarative, bit 1 explicit table (active) or declarative,
// bit 2 expressions instead of function indices.
func (s shifter) element(r *reader, out []byte) []byte {
	flags := r.u32()
	out = appendU32(out, flags)
	if flags > 7 {
		r.fail("element segment flags %d", flags)
		return out
	}
	if flags&3 == 2 {
		out = appendU32(out, r.u32()) // table index
	}
	if flags&1 == 0 {
		out = s.constExpr(r, out) // offset
	}
	if flags&3 != 0 {
		out = append(out, r.byte()) // elemkind or reftype
	}
	n := r.u32()
	out = appendU32(out, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		if flags&4 == 0 {
			out = appendU32(out, s.fn(r.u32()))
		} else {
			out = s.constExpr(r, out)
		}
	}
	return out
}

// constExpr copies a constant expression up to its end, renumbering
// ref.func.
func (s shifter) constExpr(r *reader, out []byte) []byte {
	for r.err == nil {
		start := r.off
		op := r.byte()
		if op == 0xD2 {
			out = appendU32(append(out, op), s.fn(r.u32()))
			continue
		}
		_ = r.skipImmediates(op) // the error sticks in r
		out = append(out, r.b[start:r.off]...)
		if op == 0x0B {
			break
		}
	}
	return out
}

// nameSection renumbers the function names of the "name" custom section
// and drops its function-indexed local and label names (debug data). A
// name section it cannot parse is dropped: names never affect execution.
func (s shifter) nameSection(secs []section) ([]section, error) {
	out := secs[:0:0]
	for _, sec := range secs {
		if sec.id == 0 {
			r := reader{b: sec.payload}
			if r.str() == "name" && r.err == nil {
				p, ok := s.names(&r)
				if !ok {
					continue
				}
				sec.payload = p
			}
		}
		out = append(out, sec)
	}
	return out, nil
}

func (s shifter) names(r *reader) ([]byte, bool) {
	out := append([]byte(nil), r.b[:r.off]...)
	for r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, false
		}
		body := r.b[r.off : r.off+int(size)]
		r.off += int(size)
		switch id {
		case 1: // function names
			sub := reader{b: body}
			p, err := s.rewriteEachPayload(&sub, func(r *reader, out []byte) []byte {
				idx := r.u32()
				start := r.off
				r.name()
				return append(appendU32(out, s.fn(idx)), r.b[start:r.off]...)
			})
			if err != nil {
				return nil, false
			}
			out = append(appendU32(append(out, 1), uint32(len(p))), p...)
		case 2, 3: // local and label names, by function: dropped
		default:
			out = append(appendU32(append(out, id), size), body...)
		}
	}
	return out, true
}

func (s shifter) rewriteEachPayload(r *reader, f func(r *reader, out []byte) []byte) ([]byte, error) {
	secs, err := s.rewriteEach([]section{{id: 1, payload: r.b}}, 1, f)
	if err != nil {
		return nil, err
	}
	return secs[0].payload, nil
}
