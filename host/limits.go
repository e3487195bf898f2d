package host

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Load-time limits on what a module declares. wazero allocates for every
// table element, global, function and data byte a module declares, and its
// compiler costs time and memory in proportion to the code (and more than
// that for deep block nests): a 100k-deep nest or a 4.5 MB function took
// 45-90 s and 540 MB to load, 500,000 globals 270 MB. checkModule reads the
// sections once, linearly and without allocating per entry, and refuses a
// module over any limit before the instrumenter or the compiler sees it.
// The defaults (DefaultLimits) come from the shipped plugins' measured
// sizes, with headroom; see abi/ABI.md section 7 and host/BENCHMARKS.md.
//
// The pass is also the gate in front of wazero's decoder, which allocates
// every vector from the count the module declares before reading a single
// entry (an 8-byte function body declaring 2^32-1 locals asks for 32 GB
// and kills the process, and so does a name or an export vector with an
// absurd length): every section wazero decodes is read here entry by
// entry, so a count the bytes cannot back fails here, and the counts the
// bytes can back are bounded by the limits.

// ErrModuleLimit: the module declares more than a load limit allows. Every
// refusal is a *ModuleLimitError naming the limit, the value and the key.
var ErrModuleLimit = errors.New("module over a load limit")

// ModuleLimitError says which limit a module broke, where, and which
// config key raises it.
type ModuleLimitError struct {
	Limit string // what is limited, e.g. "table elements"
	Where string // the offending item, e.g. "table 0"; "" for module totals
	Value int64  // what the module declares
	Max   int64  // the limit
	Key   string // config key under plugins.limits (and per plugin under limits)
}

func (e *ModuleLimitError) Error() string {
	where := ""
	if e.Where != "" {
		where = " (" + e.Where + ")"
	}
	return fmt.Sprintf("%s%s: %d, over the limit of %d (config key plugins.limits.%s)", e.Limit, where, e.Value, e.Max, e.Key)
}

// Unwrap returns ErrModuleLimit.
func (e *ModuleLimitError) Unwrap() error { return ErrModuleLimit }

// limitRefusal is a *LoadError's Err for a module over a load limit: it
// prints as the sentinel, so the error reads "module over a load limit:
// <the *ModuleLimitError in Reason>", and unwraps to the detail.
type limitRefusal struct{ e *ModuleLimitError }

func (l limitRefusal) Error() string { return ErrModuleLimit.Error() }
func (l limitRefusal) Unwrap() error { return l.e }

func limitLoadError(spec *Spec, e *ModuleLimitError) *LoadError {
	return &LoadError{Plugin: spec.provisionalName(), File: spec.label(), Reason: e.Error() + "; refused before compiling", Err: limitRefusal{e}}
}

// compiledBytesPerCodeByte is what wazero's compiler keeps per byte of
// code section, measured on the shipped plugins (host/BENCHMARKS.md,
// "Load limits"): CodeBytesMax bounds the compiled size through it.
const compiledBytesPerCodeByte = 12

// moduleCheck is one pass over a module's sections.
type moduleCheck struct {
	l           Limits
	tables      []tableDecl
	tableTotal  int64 // computed by totals
	globals     int64
	funcs       int64
	dataTotal   int64
	elemTotal   int64
	localsTotal int64
	tableGrow   bool // the code uses table.grow
	seen        moduleSizes
	sectionSeen [14]bool
}

// moduleSizes are the largest single items seen, for measurements.
type moduleSizes struct {
	codeBytes, bodyBytes, depth, dataSegBytes, elemSegEntries, locals int64
}

// tableDecl is a defined table's limits and where they are in the table
// section's payload (for capMaxima).
type tableDecl struct {
	min, max   uint32
	hasMax     bool
	start, end int // the limits' bytes
}

func (c *moduleCheck) over(limit, where string, value int64, max int, key string) error {
	return c.overAt(limit, where, -1, value, max, key)
}

// overAt is over for item idx of a kind ("table 3"); the text is built only
// for a refusal, as the check runs over every function of every load.
func (c *moduleCheck) overAt(limit, kind string, idx int64, value int64, max int, key string) error {
	if value <= int64(max) {
		return nil
	}
	where := kind
	if idx >= 0 {
		where = fmt.Sprintf("%s %d", kind, idx)
	}
	return &ModuleLimitError{Limit: limit, Where: where, Value: value, Max: int64(max), Key: key}
}

// checkModuleLimits refuses bin when it is over one of l's load limits, and
// returns the module rewritten with every table's maximum capped at
// TableElementsMax when the code uses table.grow (a table declared without
// a maximum could otherwise grow to 2^32-1 elements); capped is nil when
// nothing needed to change.
func checkModuleLimits(bin []byte, l Limits) (capped []byte, err error) {
	if len(bin) > l.ModuleBytesMax {
		return nil, &ModuleLimitError{Limit: "module size in bytes", Value: int64(len(bin)), Max: int64(l.ModuleBytesMax), Key: "module_bytes_max"}
	}
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	c := moduleCheck{l: l}
	return checkModuleWith(&c, bin)
}

func checkModuleWith(c *moduleCheck, bin []byte) ([]byte, error) {
	var tableSec []byte
	tableOff := -1
	for off := 8; off < len(bin); {
		id := bin[off]
		n, k, err := readU32(bin[off+1:])
		start := off + 1 + k
		if err != nil || uint64(n) > uint64(len(bin)-start) {
			return nil, fmt.Errorf("truncated section %d at byte %d", id, off)
		}
		payload := bin[start : start+int(n)]
		if id == 4 {
			tableSec, tableOff = payload, off
		}
		if err := c.section(id, payload); err != nil {
			return nil, err
		}
		off = start + int(n)
	}
	if err := c.totals(); err != nil {
		return nil, err
	}
	return c.capMaxima(bin, tableSec, tableOff), nil
}

func (c *moduleCheck) section(id byte, p []byte) error {
	if int(id) < len(c.sectionSeen) {
		if c.sectionSeen[id] && id != 0 {
			return fmt.Errorf("section %d appears twice", id)
		}
		c.sectionSeen[id] = true
	}
	r := reader{b: p}
	var err error
	switch id {
	case 0:
		err = customSection(&r)
	case 1:
		typeSection(&r)
	case 2:
		err = c.imports(&r)
	case 3:
		c.funcs = int64(r.u32())
		err = c.over("functions", "", c.funcs, c.l.FunctionsMax, "functions_max")
	case 4:
		err = c.tableSection(&r)
	case 5:
		for n, i := r.u32(), uint32(0); i < n && r.err == nil; i++ {
			r.limits()
		}
	case 6:
		c.globals += int64(r.u32())
		err = c.over("globals", "", c.globals, c.l.GlobalsMax, "globals_max")
	case 7:
		for n, i := r.u32(), uint32(0); i < n && r.err == nil; i++ {
			r.name()
			r.byte()
			r.u32()
		}
	case 9:
		err = c.elements(&r)
	case 10:
		err = c.code(&r, len(p))
	case 11:
		err = c.data(&r)
	}
	if err != nil {
		return err
	}
	if r.err != nil {
		// The reader's errors say "cannot be metered", which is the
		// instrumenter's refusal; here the module is simply malformed.
		return fmt.Errorf("section %d: %s", id, strings.TrimPrefix(r.err.Error(), ErrNotMeterable.Error()+": "))
	}
	return nil
}

// imports counts imported globals (they take instance memory like defined
// ones) and refuses imported tables, which no host module provides.
func (c *moduleCheck) imports(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0:
			r.u32()
		case 1:
			return errors.New("imports a table; plugins must define their own")
		case 2:
			r.limits()
		case 3:
			r.byte()
			r.byte()
			c.globals++
		default:
			r.byte()
			r.u32()
		}
	}
	return c.over("globals", "", c.globals, c.l.GlobalsMax, "globals_max")
}

// tableSection reads each table type: a reference type (or the
// function-references form 0x40 0x00 reftype limits init-expr).
func (c *moduleCheck) tableSection(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		withInit := r.off < len(r.b) && r.b[r.off] == 0x40
		if withInit {
			r.skip(2)
		}
		if t := r.byte(); t == 0x63 || t == 0x64 {
			r.leb() // heap type
		}
		var t tableDecl
		t.start = r.off
		flags := r.byte()
		t.min = r.u32()
		if t.hasMax = flags&1 != 0; t.hasMax {
			t.max = r.u32()
		}
		t.end = r.off
		if flags > 1 {
			return fmt.Errorf("table %d: limits flags 0x%02x (only 32-bit, unshared tables)", i, flags)
		}
		if withInit {
			skipConstExpr(r)
		}
		if err := c.overAt("table elements at start", "table", int64(i), int64(t.min), c.l.TableElementsMax, "table_elements_max"); err != nil {
			return err
		}
		c.tables = append(c.tables, t)
	}
	return nil
}

// effectiveMax is what a table may grow to once capped.
func (c *moduleCheck) effectiveMax(t tableDecl) uint32 {
	if !t.hasMax || t.max > uint32(c.l.TableElementsMax) {
		return uint32(c.l.TableElementsMax)
	}
	return t.max
}

func skipConstExpr(r *reader) {
	for r.err == nil {
		op := r.byte()
		if op == 0x0B {
			return
		}
		_ = r.skipImmediates(op)
	}
}

// elements reads the element segments (the eight encodings of the
// bulk-memory proposal) and counts their entries.
func (c *moduleCheck) elements(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		form := r.u32()
		if form > 7 {
			return fmt.Errorf("element segment %d: form %d", i, form)
		}
		if form == 2 || form == 6 {
			r.u32() // table index
		}
		if form&1 == 0 {
			skipConstExpr(r) // offset (active)
		}
		if form&3 != 0 {
			r.byte() // elemkind or reftype
		}
		count := r.u32()
		if err := c.overAt("element segment entries", "element segment", int64(i), int64(count), c.l.ElementSegmentEntriesMax, "element_segment_entries_max"); err != nil {
			return err
		}
		c.elemTotal += int64(count)
		c.seen.elemSegEntries = max(c.seen.elemSegEntries, int64(count))
		for j := uint32(0); j < count && r.err == nil; j++ {
			if form&4 == 0 {
				r.u32() // function index
			} else {
				skipConstExpr(r)
			}
		}
	}
	return c.over("element entries in total", "", c.elemTotal, c.l.ElementEntriesTotalMax, "element_entries_total_max")
}

func (c *moduleCheck) data(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch form := r.u32(); form {
		case 0:
			skipConstExpr(r)
		case 1:
		case 2:
			r.u32()
			skipConstExpr(r)
		default:
			return fmt.Errorf("data segment %d: form %d", i, form)
		}
		size := r.u32()
		if err := c.overAt("data segment bytes", "data segment", int64(i), int64(size), c.l.DataSegmentBytesMax, "data_segment_bytes_max"); err != nil {
			return err
		}
		c.dataTotal += int64(size)
		c.seen.dataSegBytes = max(c.seen.dataSegBytes, int64(size))
		r.skip(int(size))
	}
	return c.over("data bytes in total", "", c.dataTotal, c.l.DataBytesTotalMax, "data_bytes_total_max")
}

// code checks the code section's size (the compiled-size bound), each
// body's size and its block nesting, walking every instruction once.
func (c *moduleCheck) code(r *reader, size int) error {
	if err := c.over("code section bytes", "", int64(size), c.l.CodeBytesMax, "code_bytes_max"); err != nil {
		return err
	}
	c.seen.codeBytes = int64(size)
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		bodySize := r.u32()
		c.seen.bodyBytes = max(c.seen.bodyBytes, int64(bodySize))
		if err := c.overAt("function body bytes", "code section function", int64(i), int64(bodySize), c.l.FunctionBodyBytesMax, "function_body_bytes_max"); err != nil {
			return err
		}
		if int(bodySize) > len(r.b)-r.off {
			return fmt.Errorf("function %d: truncated body", i)
		}
		body := reader{b: r.b[r.off : r.off+int(bodySize)]}
		r.off += int(bodySize)
		locals := body.locals()
		c.seen.locals = max(c.seen.locals, locals)
		c.localsTotal += locals
		if err := c.overAt("function locals", "code section function", int64(i), locals, c.l.FunctionLocalsMax, "function_locals_max"); err != nil {
			return err
		}
		// Each local costs about 8 bytes of compiled code however short
		// the body that declares it.
		if err := c.over("locals in total", "", c.localsTotal, c.l.LocalsTotalMax, "locals_total_max"); err != nil {
			return err
		}
		// Each level takes 2 bytes or more, so a short body cannot be too
		// deep; it is walked only if it may hold table.grow (0xFC then 15 as
		// a LEB128, which may be padded: any 0xFC byte counts).
		if int64(bodySize) <= 2*int64(c.l.BlockNestingDepthMax) && (c.tableGrow || bytes.IndexByte(body.b, 0xFC) < 0) {
			continue
		}
		depth, err := c.body(&body)
		if err != nil {
			return fmt.Errorf("function %d: %w", i, err)
		}
		c.seen.depth = max(c.seen.depth, int64(depth))
		if err := c.overAt("block nesting depth", "code section function", int64(i), int64(depth), c.l.BlockNestingDepthMax, "block_nesting_depth_max"); err != nil {
			return err
		}
	}
	return nil
}

// peekU32 decodes the LEB128 u32 at the start of b without consuming it
// (an invalid or truncated one reads as 1<<32-1, which no opcode is).
func peekU32(b []byte) uint32 {
	var v uint32
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint32(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			return v
		}
	}
	return 1<<32 - 1
}

// locals reads a body's local declarations and returns how many locals
// they declare (wazero allocates them all before validating anything).
func (r *reader) locals() int64 {
	var sum int64
	for groups, i := r.u32(), uint32(0); i < groups && r.err == nil; i++ {
		sum += int64(r.u32())
		r.valtype()
	}
	return sum
}

// body returns the deepest block nesting of one function body, stopping
// as soon as it passes the limit.
func (c *moduleCheck) body(r *reader) (int, error) {
	depth, deepest := 0, 0
	for r.off < len(r.b) && r.err == nil {
		op := r.byte()
		switch op {
		case 0x02, 0x03, 0x04, 0x06, 0x1F: // block, loop, if, try, try_table
			if depth++; depth > deepest {
				deepest = depth
				if deepest > c.l.BlockNestingDepthMax {
					return deepest, nil
				}
			}
		case 0x0B:
			depth--
		case 0xFC:
			c.tableGrow = c.tableGrow || peekU32(r.b[r.off:]) == 15 // table.grow, padded or not
		}
		if err := r.skipImmediates(op); err != nil {
			return 0, err
		}
	}
	return deepest, r.err
}

// totals checks what the tables may hold at most: their initial sizes,
// or their capped maxima when the code can grow them.
func (c *moduleCheck) totals() error {
	for _, t := range c.tables {
		if c.tableGrow {
			c.tableTotal += int64(c.effectiveMax(t))
		} else {
			c.tableTotal += int64(t.min)
		}
	}
	return c.over("table elements in total", "", c.tableTotal, c.l.TableElementsTotalMax, "table_elements_total_max")
}

// capMaxima rewrites the table section so that every table declares a
// maximum of at most TableElementsMax: wazero refuses table.grow past a
// declared maximum, so a guest can never hold more than that. Only the
// limits' bytes change; a module that never grows its tables, or whose
// maxima are already within the limit, is returned unchanged.
func (c *moduleCheck) capMaxima(bin, sec []byte, secOff int) []byte {
	needs := false
	for _, t := range c.tables {
		needs = needs || !t.hasMax || t.max > uint32(c.l.TableElementsMax)
	}
	if !needs || !c.tableGrow {
		return nil
	}
	payload := make([]byte, 0, len(sec)+5*len(c.tables))
	last := 0
	for _, t := range c.tables {
		payload = append(payload, sec[last:t.start]...)
		payload = append(payload, 0x01)
		payload = appendU32(payload, t.min)
		payload = appendU32(payload, c.effectiveMax(t))
		last = t.end
	}
	payload = append(payload, sec[last:]...)
	_, k, _ := readU32(bin[secOff+1:])
	out := make([]byte, 0, len(bin)+len(payload)-len(sec))
	out = append(out, bin[:secOff+1]...)
	out = appendU32(out, uint32(len(payload)))
	out = append(out, payload...)
	return append(out, bin[secOff+1+k+len(sec):]...)
}

// typeSection reads every function type; its vectors are what wazero
// allocates from.
func typeSection(r *reader) {
	for n, i := r.u32(), uint32(0); i < n && r.err == nil; i++ {
		if form := r.byte(); form != 0x60 {
			r.fail("type form 0x%02x (only function types)", form)
			return
		}
		for k := 0; k < 2; k++ { // params, results
			for m, j := r.u32(), uint32(0); j < m && r.err == nil; j++ {
				r.valtype()
			}
		}
	}
}

// customSection reads the "name" section the way wazero decodes it (its
// function and local name maps are allocated from declared counts); other
// custom sections are skipped by wazero and here.
func customSection(r *reader) error {
	if r.str() != "name" {
		return r.err
	}
	for r.off < len(r.b) && r.err == nil {
		id, size := r.byte(), r.u32()
		switch id {
		case 0:
			r.name()
		case 1:
			nameMap(r)
		case 2:
			for n, i := r.u32(), uint32(0); i < n && r.err == nil; i++ {
				r.u32()
				nameMap(r)
			}
		default:
			r.skip(int(size))
		}
	}
	return r.err
}

// nameMap reads a vector of (index, name).
func nameMap(r *reader) {
	for n, i := r.u32(), uint32(0); i < n && r.err == nil; i++ {
		r.u32()
		r.name()
	}
}
