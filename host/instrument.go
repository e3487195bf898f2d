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
// instrument rewrites a module at load (instrument_code.go) so that each
// straight-line run of instructions charges its cost, one unit per
// instruction by default, to a fuel global before it runs. Bulk operations
// (memory.fill/copy/init, table.fill/copy/init/grow, memory.grow) also
// charge their size, read from the operand on the stack, before they run,
// and test the fuel at once: an operation larger than what is left stops
// the call before it starts. Function entries and loop headers, which
// every unbounded execution passes, test the fuel too: when it is below
// the stop global (0 until the watchdog stops the call) the guest calls
// the injected import purser_fuel.refill. The charge is a function of the
// code point and its operands, so a call on the same instance state uses
// the same fuel on every run and machine: the number of instructions it
// executed plus the sizes of its bulk operations, weighted by FuelCosts.
//
// The host sets the fuel global to one slice of the call's budget and
// keeps the rest (the bank) in Go. refill (host.go) yields the goroutine
// (runtime.Gosched: a scheduling point and a GC safe point, so a long call
// delays neither other goroutines nor the collector by more than one
// slice), fails the call if the watchdog stopped it (the deadline
// backstop), fails it with ErrFuelExhausted if bank+fuel < 0, and
// otherwise hands out the next slice. A call therefore fails exactly when
// it uses more than its budget, whatever the slice.
//
// The stop global is the clock's way in: the watchdog raises it when a
// call passes its deadline, so the guest's next test (at most one loop
// iteration or one bulk operation away) calls refill, which fails the
// call, even when the slice has fuel left. Only the watchdog writes it (a
// stopped instance is discarded), so it needs no synchronisation with
// the calling goroutine.
//
// The import shifts every defined function's index by one; the rewrite
// renumbers calls, ref.func, exports, elements, global initialisers and
// the name section.

// Names the instrumenter injects; a module that already uses any
// __purser_ export or the purser_fuel import module is refused.
const (
	fuelGlobalExport = "__purser_fuel"
	stopGlobalExport = "__purser_stop"
	// startExport replaces a start section, so that the host runs the
	// start function under fuel (in boot) rather than inside
	// instantiation, where no budget is set yet.
	startExport      = "__purser_start"
	fuelImportModule = "purser_fuel"
	fuelImportRefill = "refill"
)

// instrumenterVersion changes whenever the rewrite changes what a module
// is charged or how; it keys the instrumented-module cache.
const instrumenterVersion = 4

// FuelCosts is the fuel cost table: what the instrumenter charges. Fuel is
// counted in these units; with the defaults one unit is one Wasm
// instruction.
type FuelCosts struct {
	// Instruction is charged per instruction (block, loop, else and end
	// are structure, not instructions, and cost nothing).
	Instruction int64
	// MemoryGrowPerPage is charged per 64 KiB page memory.grow asks for
	// (granted or not), on top of Instruction: the pages are fresh memory,
	// zeroed and faulted in when first touched.
	MemoryGrowPerPage int64
	// BulkBytesPerUnit: memory.fill, memory.copy and memory.init charge
	// one unit per this many bytes (a power of two), on top of their
	// instruction cost.
	BulkBytesPerUnit int64
	// TableBulkPerElement is charged per element table.fill, table.copy
	// and table.init write, on top of Instruction.
	TableBulkPerElement int64
	// TableGrowPerElement is charged per element table.grow asks for
	// (granted or not), on top of Instruction: tables live in the host's
	// heap, outside the memory limit.
	TableGrowPerElement int64
	// Slice is how much fuel a guest burns between two visits to the
	// host: it bounds how long a call can keep other goroutines and the
	// collector waiting. It changes neither the module nor what a call is
	// charged.
	Slice int64
	// baseline instruments as before issue 12, only to measure what the
	// bulk charges and the stop global cost (BenchmarkBulkCharges): tests
	// compare the fuel with 0 and only memory.fill/copy charge their size.
	baseline bool
}

// DefaultFuelCosts is the cost table purser ships; BENCHMARKS.md ("Fuel",
// "Bulk operations") has the measurements. One unit is about one simple
// instruction (0.3-1.5 ns). Warm bulk memory moves at 16 bytes per unit,
// a table element written (8 bytes) costs a unit. Fresh memory costs one
// unit per 4 bytes, because allocating, zeroing and faulting in a page
// costs several times a warm memset: memory.grow is 16,384 per page;
// table.grow is 16 per element (2 for its 8 fresh bytes, and up to 4
// elements copied when Go reallocates the table: growing by a quarter
// copies the whole).
func DefaultFuelCosts() FuelCosts {
	return FuelCosts{Instruction: 1, MemoryGrowPerPage: 64 << 10 / 4, BulkBytesPerUnit: 16,
		TableBulkPerElement: 1, TableGrowPerElement: 16, Slice: 100_000}
}

func (c FuelCosts) or(base FuelCosts) FuelCosts {
	if c.Instruction == 0 {
		c.Instruction = base.Instruction
	}
	if c.MemoryGrowPerPage == 0 {
		c.MemoryGrowPerPage = base.MemoryGrowPerPage
	}
	if c.BulkBytesPerUnit == 0 {
		c.BulkBytesPerUnit = base.BulkBytesPerUnit
	}
	if c.TableBulkPerElement == 0 {
		c.TableBulkPerElement = base.TableBulkPerElement
	}
	if c.TableGrowPerElement == 0 {
		c.TableGrowPerElement = base.TableGrowPerElement
	}
	if c.Slice == 0 {
		c.Slice = base.Slice
	}
	return c
}

// validate bounds the costs so that no charge overflows: a size operand
// is below 2^32 and every multiplier at most 2^20, so a charge stays
// below 2^52, far from the 2^62 budget ceiling.
func (c FuelCosts) validate() error {
	switch {
	case c.Instruction < 1 || c.Instruction > 1<<20:
		return fmt.Errorf("fuel cost per instruction %d is outside [1, 2^20]", c.Instruction)
	case c.MemoryGrowPerPage < 1 || c.MemoryGrowPerPage > 1<<20:
		return fmt.Errorf("fuel cost per memory.grow page %d is outside [1, 2^20]", c.MemoryGrowPerPage)
	case c.BulkBytesPerUnit < 1 || c.BulkBytesPerUnit > 1<<20 || c.BulkBytesPerUnit&(c.BulkBytesPerUnit-1) != 0:
		return fmt.Errorf("bulk bytes per fuel unit %d is not a power of two in [1, 2^20]", c.BulkBytesPerUnit)
	case c.TableBulkPerElement < 1 || c.TableBulkPerElement > 1<<20:
		return fmt.Errorf("fuel cost per table element written %d is outside [1, 2^20]", c.TableBulkPerElement)
	case c.TableGrowPerElement < 1 || c.TableGrowPerElement > 1<<20:
		return fmt.Errorf("fuel cost per table element grown %d is outside [1, 2^20]", c.TableGrowPerElement)
	case c.Slice < 1000 || c.Slice > 1<<40:
		return fmt.Errorf("fuel slice %d is outside [1000, 2^40]", c.Slice)
	}
	return nil
}

// key identifies the instrumented module for the cache: the instrumenter
// version and the costs it bakes in (not Slice, which stays in the host).
func (c FuelCosts) key() string {
	var b []byte
	b = binary.AppendUvarint(b, instrumenterVersion)
	if c.baseline {
		b = append(b, 'b')
	}
	for _, v := range []int64{c.Instruction, c.MemoryGrowPerPage, c.BulkBytesPerUnit, c.TableBulkPerElement, c.TableGrowPerElement} {
		b = binary.AppendVarint(b, v)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("v%d-%s", instrumenterVersion, hex.EncodeToString(sum[:6]))
}

// wasm section ids and their canonical order (custom sections excepted).
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id      byte
	payload []byte
}

// refillType is the import's signature: (fuel i64) -> (new fuel i64).
var refillType = []byte{0x60, 0x01, 0x7E, 0x01, 0x7E}

// instrument returns the rewritten module.
func instrument(bin []byte, costs FuelCosts) ([]byte, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not a wasm 1.0 binary", ErrNotMeterable)
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
		return nil, fmt.Errorf("%w: no memory", ErrNotMeterable)
	}
	sh := shifter{refill: mi.importedFuncs}
	rw := rewriter{fuel: mi.importedGlobals + mi.definedGlobals, stop: mi.importedGlobals + mi.definedGlobals + 1, refill: sh.refill, costs: costs, mi: mi, sh: sh}
	var start int64 = -1
	steps := []func([]section) ([]section, error){
		func(s []section) ([]section, error) { return appendEntry(s, 1, refillType), nil },
		func(s []section) ([]section, error) {
			return appendEntry(s, 2, appendU32(importName(), uint32(len(mi.typeParams)))), nil
		},
		func(s []section) ([]section, error) { return sh.rewriteEach(s, 6, sh.global) },
		func(s []section) ([]section, error) {
			s = appendEntry(s, 6, []byte{0x7E, 0x01, 0x42, 0x00, 0x0B})         // fuel: mutable i64
			return appendEntry(s, 6, []byte{0x7E, 0x01, 0x42, 0x00, 0x0B}), nil // stop: mutable i64, 0
		},
		func(s []section) (out []section, err error) { out, start, err = withoutStart(s); return },
		func(s []section) ([]section, error) { return sh.rewriteEach(s, 7, sh.export) },
		func(s []section) ([]section, error) { return withExports(s, rw.fuel, start, sh) },
		func(s []section) ([]section, error) { return sh.rewriteEach(s, 9, sh.element) },
		func(s []section) ([]section, error) { return rewriteCode(s, &rw) },
		sh.nameSection,
	}
	for _, step := range steps {
		if secs, err = step(secs); err != nil {
			return nil, err
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

func importName() []byte {
	b := appendU32(nil, uint32(len(fuelImportModule)))
	b = append(b, fuelImportModule...)
	b = appendU32(b, uint32(len(fuelImportRefill)))
	b = append(append(b, fuelImportRefill...), 0x00) // kind: func
	return b
}

func splitSections(b []byte) ([]section, error) {
	var secs []section
	for len(b) > 0 {
		id := b[0]
		n, k, err := readU32(b[1:])
		if err != nil || uint64(n) > uint64(len(b)-1-k) {
			return nil, fmt.Errorf("%w: truncated section %d", ErrNotMeterable, id)
		}
		secs = append(secs, section{id, b[1+k : 1+k+int(n)]})
		b = b[1+k+int(n):]
	}
	return secs, nil
}

// moduleInfo is what the rewriter needs from the other sections.
type moduleInfo struct {
	importedFuncs   uint32
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
			r.imports(&mi)
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
			return mi, fmt.Errorf("%w: function type %d out of range", ErrNotMeterable, t)
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

// imports counts imported functions and globals (they precede defined
// ones in their index spaces) and refuses the reserved import module.
func (r *reader) imports(mi *moduleInfo) {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := r.str()
		r.name()
		if mod == fuelImportModule {
			r.fail("imports from the reserved module %q", fuelImportModule)
			return
		}
		switch kind := r.byte(); kind {
		case 0: // func: type index
			r.u32()
			mi.importedFuncs++
		case 1: // table: reftype + limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype + mut
			r.byte()
			r.byte()
			mi.importedGlobals++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			r.fail("import kind %d", kind)
		}
	}
}

// appendEntry adds one entry to the vector section id, creating the
// section if the module has none.
func appendEntry(secs []section, id byte, entry []byte) []section {
	for i, s := range secs {
		if s.id == id {
			n, k, err := readU32(s.payload)
			if err != nil {
				return secs // malformed: wazero's compile reports it
			}
			p := appendU32(nil, n+1)
			p = append(p, s.payload[k:]...)
			secs[i].payload = append(p, entry...)
			return secs
		}
	}
	return insertSection(secs, section{id, append([]byte{1}, entry...)})
}

// withoutStart removes the start section and returns its function index
// (-1 when there is none), before renumbering.
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

// withExports exports the fuel global so the host can set and read it,
// the stop global so the watchdog can raise it, and the former start
// function.
func withExports(secs []section, fuel uint32, start int64, sh shifter) ([]section, error) {
	for _, s := range secs {
		if s.id == 7 && bytes.Contains(s.payload, []byte("__purser_")) {
			return nil, fmt.Errorf("%w: exports a reserved __purser_ name", ErrNotMeterable)
		}
	}
	exp := func(name string, kind byte, idx uint32) []byte {
		b := appendU32(nil, uint32(len(name)))
		b = append(b, name...)
		b = append(b, kind)
		return appendU32(b, idx)
	}
	secs = appendEntry(secs, 7, exp(fuelGlobalExport, 0x03, fuel))
	secs = appendEntry(secs, 7, exp(stopGlobalExport, 0x03, fuel+1))
	if start >= 0 {
		secs = appendEntry(secs, 7, exp(startExport, 0x00, sh.fn(uint32(start))))
	}
	return secs, nil
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

func rewriteCode(secs []section, rw *rewriter) ([]section, error) {
	for i := range secs {
		if secs[i].id == 10 {
			p, err := rw.code(secs[i].payload)
			if err != nil {
				return nil, err
			}
			secs[i].payload = p
		}
	}
	return secs, nil
}
