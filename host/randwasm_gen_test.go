package host

import (
	"encoding/binary"
	"math"

	"pgregory.net/rapid"
)

// A generator of random, valid, terminating wasm modules, written straight
// to the binary format, for property tests of the fuel rewriter
// (instrument). Validity holds by construction: every expression pushes
// exactly one value of the type asked for and every statement leaves the
// stack as it found it. Termination holds by construction too: calls go
// only to lower-indexed functions (plus one self-recursive function whose
// depth parameter is masked to 0..7), and loops are never branch targets
// except for the one back edge at their bottom, taken while a dedicated
// counter local (written by nothing else) stays positive. Results are
// deterministic: no trap is reachable (constant nonzero divisors, masked
// in-bounds addresses, unreachable only in dead code) and floats, whose
// NaN bits may differ between engines, reach integers only through
// saturating truncations and comparisons.

// Value types and the empty block type.
const (
	rwI32  byte = 0x7F
	rwI64  byte = 0x7E
	rwF32  byte = 0x7D
	rwF64  byte = 0x7C
	rwVoid byte = 0x40
)

// Limits keeping modules small (a few KB) and runs cheap (tens of
// microseconds interpreted).
const (
	rwMaxLoopDepth = 3
	rwMaxIter      = 40
	rwMaxMult      = 400  // product of the iteration counts of nested loops
	rwBudget       = 1500 // estimated instructions per call of a function
	rwRecBudget    = 150  // per activation of the recursive function
	rwRecDepthMask = 7    // the recursion depth argument is masked with it
	rwMaxDepth     = 5    // nesting of expressions and blocks
	rwMaxCode      = 1200 // bytes per function body, roughly
	rwAddrMask     = 0x7FF0
	rwMaxOffset    = 0x7FFF // mask+offset+8 stays within the first page
	rwLenMask      = 0xFF   // memory.fill/copy lengths
	rwInitMask     = 0x1F   // memory.init offsets and lengths: within rwPassiveLen
	rwPassiveLen   = 64     // bytes in the passive data segment
	rwBulkTableMin = 8      // the bulk table's size before any table.grow
	rwBulkTableMax = 64     // and its maximum: later grows return -1
	rwElemLen      = 8      // entries in the passive element segment
)

// Features the test measures; several are forced once per module on a coin
// flip so that each shows up in a good fraction of draws.
const (
	featLoop         = "loop"
	featLoopParam    = "loop with param"
	featBrTable      = "br_table"
	featCallIndirect = "call_indirect"
	featFill         = "memory.fill"
	featCopy         = "memory.copy"
	featSignExt      = "sign extension"
	featTruncSat     = "saturating trunc"
	featRecursion    = "self recursion"
	featStart        = "start section"
	featDeadCode     = "unreachable (dead)"
	featBigLocals    = "local index >= 128"
	featNoGlobals    = "no global section"
	featBlockParam   = "block with param"
	featDiv          = "div/rem by constant"
	featGlobalSet    = "global.set"
	featMemGrow      = "memory.grow"
	featMemInit      = "memory.init"
	featTableGrow    = "table.grow"
	featTableFill    = "table.fill"
	featTableCopy    = "table.copy"
	featTableInit    = "table.init"
	featNested3      = "loops nested 3 deep"
	featLoopValue    = "loop with result"
	featCall         = "call"
	featBr           = "br"
	featBrIf         = "br_if"
	featReturn       = "return"
	featIfElse       = "if/else"
	featSelect       = "select"
	featSelectT      = "typed select"
	featLoadStore    = "load and store"
	featTee          = "local.tee"
	featFloatCmp     = "float comparison"
)

var rwForced = []string{featLoop, featBrTable, featCallIndirect, featFill, featCopy, featSignExt, featTruncSat,
	featMemInit, featTableGrow, featTableFill, featTableCopy, featTableInit}

// rwFunc is one defined function.
type rwFunc struct {
	params   []byte
	result   byte // rwVoid when none
	typeIdx  uint32
	locals   []byte   // types of params then declared locals
	decl     []byte   // encoded local declarations
	counters []uint32 // loop counter of each nesting level
	writable []uint32 // locals the body may set: not counters, not the depth
	depthArg bool     // params[0] is a recursion depth, masked at call sites
	cost     int      // estimated instructions per call
	code     []byte
}

// rwLabel is an enclosing block, loop or if.
type rwLabel struct {
	typ  byte // what a branch to it carries (rwVoid: nothing)
	loop bool // loops are never targets: a branch back would skip the counter
}

type rwGlobal struct {
	typ  byte
	mut  bool
	init int64
}

type rwModule struct {
	bin  []byte
	seen map[string]bool // features present
}

type rwGen struct {
	t        *rapid.T
	types    []string // "params:results" of each type, in type-section order
	funcs    []*rwFunc
	globals  []rwGlobal
	table    []int           // function index in each table slot; nil: no table
	passive  []byte          // the passive data segment, rwPassiveLen bytes
	elemNull [rwElemLen]bool // the passive element segment: null or ref.func 0
	data     []byte
	dataAt   int
	start    int // index of the start function, -1 if none
	pending  map[string]bool
	seen     map[string]bool
	broken   bool // run drops its result, so that the module is invalid

	// State of the body being generated.
	cur    int
	fn     *rwFunc
	code   []byte
	labels []rwLabel
	mult   int // how many times the current point runs per call
	cost   int
	budget int
	loops  int
	depth  int
}

// genModule draws a random module. It always defines and exports a memory
// named "memory" (1 page min, max 2 pages) and exports a function "run"
// with type () -> i64 that returns a deterministic value.
func genModule(t *rapid.T) []byte { return genModuleInfo(t).bin }

// genBrokenModule draws a module that fails validation: run drops its
// result. It tests the reporting of failures.
func genBrokenModule(t *rapid.T) []byte { return genWith(t, true).bin }

func genModuleInfo(t *rapid.T) rwModule { return genWith(t, false) }

func genWith(t *rapid.T, broken bool) rwModule {
	g := &rwGen{t: t, start: -1, pending: map[string]bool{}, seen: map[string]bool{}, broken: broken}
	for _, f := range rwForced {
		if g.coin("force " + f) {
			g.pending[f] = true
		}
	}
	g.drawGlobals()
	g.drawFuncs()
	g.drawTable()
	g.passive = rapid.SliceOfN(rapid.Byte(), rwPassiveLen, rwPassiveLen).Draw(t, "passive data")
	for i := range g.elemNull {
		g.elemNull[i] = g.coin("null element")
	}
	// ref.func 0 in a body is valid only if a segment declares function 0:
	// keep one element non-null so tableRef may always use it.
	g.elemNull[0] = false
	if g.intn(3, "data") > 0 { // before the bodies: memory.init names the passive segment after it
		g.dataAt = g.intn(0x100, "data at")
		g.data = rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "data bytes")
	}
	for i := range g.funcs {
		g.body(i)
	}
	return rwModule{bin: g.assemble(), seen: g.seen}
}

// --- drawing -------------------------------------------------------------

func (g *rwGen) intn(n int, label string) int { return rapid.IntRange(0, n-1).Draw(g.t, label) }
func (g *rwGen) coin(label string) bool       { return rapid.Bool().Draw(g.t, label) }

// pick returns an index drawn with the given weights. rapid leans toward
// small draws (and shrinks toward 0), so put the simplest choice first.
func (g *rwGen) pick(label string, weights ...int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	n := g.intn(sum, label)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	panic("unreachable")
}

func (g *rwGen) intType(label string) byte {
	if g.coin(label) {
		return rwI64
	}
	return rwI32
}

func (g *rwGen) drawGlobals() {
	n := g.intn(5, "globals")
	if n == 0 {
		g.seen[featNoGlobals] = true
	}
	for i := 0; i < n; i++ {
		g.globals = append(g.globals, rwGlobal{
			typ:  g.intType("global type"),
			mut:  g.intn(4, "global mut") > 0,
			init: rapid.Int64().Draw(g.t, "global init"),
		})
	}
}

// drawFuncs lays out the functions: plain ones, then maybe the recursive
// one, then maybe the start function, then run.
func (g *rwGen) drawFuncs() {
	for n := 1 + g.intn(6, "funcs"); n > 0; n-- {
		f := &rwFunc{result: rwVoid}
		for p := g.intn(4, "params"); p > 0; p-- {
			f.params = append(f.params, g.intType("param"))
		}
		if g.intn(5, "void") > 0 {
			f.result = g.intType("result")
		}
		g.addFunc(f)
	}
	if g.coin("recursive") {
		g.addFunc(&rwFunc{params: []byte{rwI32, rwI64}, result: rwI64, depthArg: true})
		g.seen[featRecursion] = true
	}
	if g.coin("start") {
		g.start = len(g.funcs)
		g.addFunc(&rwFunc{result: rwVoid})
		g.seen[featStart] = true
	}
	g.addFunc(&rwFunc{result: rwI64})
}

func (g *rwGen) addFunc(f *rwFunc) {
	var results []byte
	if f.result != rwVoid {
		results = []byte{f.result}
	}
	f.typeIdx = g.typeIdx(f.params, results)
	g.drawLocals(f)
	g.funcs = append(g.funcs, f)
}

// drawLocals declares a few groups of i32/i64 locals, sometimes a group
// large enough to push local indices past one LEB128 byte, with the loop
// counters as one more group at a random place.
func (g *rwGen) drawLocals(f *rwFunc) {
	f.locals = append([]byte(nil), f.params...)
	for i := range f.params {
		if i > 0 || !f.depthArg {
			f.writable = append(f.writable, uint32(i))
		}
	}
	groups := g.intn(5, "local groups")
	counterAt := g.intn(groups+1, "counters at")
	var decl []byte
	for i := 0; i <= groups; i++ {
		if i == counterAt {
			for l := 0; l < rwMaxLoopDepth; l++ {
				f.counters = append(f.counters, uint32(len(f.locals)))
				f.locals = append(f.locals, rwI32)
			}
			decl = rwU32(rwU32(decl, rwMaxLoopDepth), uint64(rwI32))
		}
		if i == groups {
			break
		}
		n, typ := 1+g.intn(3, "group size"), g.intType("group type")
		if g.intn(8, "big group") == 0 {
			n = 100 + g.intn(60, "big group size")
			g.seen[featBigLocals] = true
		}
		for j := 0; j < n; j++ {
			f.writable = append(f.writable, uint32(len(f.locals)))
			f.locals = append(f.locals, typ)
		}
		decl = rwU32(rwU32(decl, uint64(n)), uint64(typ))
	}
	f.decl = rwU32(nil, uint64(groups+1))
	f.decl = append(f.decl, decl...)
}

// drawTable fills a table with plain functions (never the recursive, start
// or run function), for call_indirect with constant indices.
func (g *rwGen) drawTable() {
	if !g.pending[featCallIndirect] && !g.coin("table") {
		return
	}
	plain := 0
	for plain < len(g.funcs) && !g.funcs[plain].depthArg && plain != g.start && plain != len(g.funcs)-1 {
		plain++
	}
	if plain == 0 {
		return
	}
	for n := 1 + g.intn(6, "table size"); n > 0; n-- {
		g.table = append(g.table, g.intn(plain, "table entry"))
	}
}

// bulkTable is the index of the table the bulk table operations use
// (funcref, 8 entries, max 64): after call_indirect's table, if any. Its
// size and which of its first entries are null end up in run's result.
func (g *rwGen) bulkTable() uint64 {
	if g.table != nil {
		return 1
	}
	return 0
}

// passiveData is the index of the passive data segment memory.init reads:
// after the active one, if any.
func (g *rwGen) passiveData() uint64 {
	if g.data != nil {
		return 1
	}
	return 0
}

// typeIdx interns a function type.
func (g *rwGen) typeIdx(params, results []byte) uint32 {
	key := string(params) + ":" + string(results)
	for i, k := range g.types {
		if k == key {
			return uint32(i)
		}
	}
	g.types = append(g.types, key)
	return uint32(len(g.types) - 1)
}

// --- bodies --------------------------------------------------------------

func (g *rwGen) body(i int) {
	f := g.funcs[i]
	g.cur, g.fn, g.code, g.mult, g.cost, g.loops, g.depth = i, f, nil, 1, 0, 0, 0
	g.labels = []rwLabel{{typ: f.result}} // the function body itself
	g.budget = rwBudget
	switch {
	case f.depthArg:
		g.budget = rwRecBudget
		g.recursiveBody()
	case i == len(g.funcs)-1:
		g.stmts(6)
		g.emitPending(true)
		g.fold()
		if g.broken {
			g.op(0x1A)
		}
	default:
		g.stmts(6)
		g.emitPending(false)
		if i == g.start {
			g.writeSomething()
		}
		if f.result != rwVoid {
			g.expr(f.result)
		}
	}
	g.op(0x0B)
	f.code, f.cost = g.code, g.cost
	if f.depthArg {
		f.cost *= rwRecDepthMask + 1
	}
}

// recursiveBody: if depth == 0 { e } else { s; self(depth-1, e) ^ e }.
func (g *rwGen) recursiveBody() {
	g.op(0x20, 0x00, 0x45, 0x04, rwI64) // local.get depth; i32.eqz; if (result i64)
	g.labels = append(g.labels, rwLabel{typ: rwI64})
	g.expr(rwI64)
	g.op(0x05)
	g.stmts(3)
	g.op(0x20, 0x00, 0x41, 0x01, 0x6B) // depth-1
	g.expr(rwI64)
	g.op(0x10)
	g.u32(uint64(g.cur))
	g.expr(rwI64)
	g.op(0x85, 0x0B) // i64.xor; end
	g.labels = g.labels[:len(g.labels)-1]
}

// emitPending places each forced feature in some function; run takes
// whatever is left.
func (g *rwGen) emitPending(last bool) {
	for _, f := range rwForced {
		if g.pending[f] && (last || g.coin("place "+f)) && g.forced(f) {
			delete(g.pending, f)
		}
	}
}

func (g *rwGen) forced(f string) bool {
	switch f {
	case featLoop:
		g.loop(rwVoid, false, rwMaxLoopDepth-g.intn(rwMaxLoopDepth, "shallower"))
	case featBrTable:
		g.op(0x02, rwVoid, 0x02, rwVoid) // two blocks to choose between
		g.labels = append(g.labels, rwLabel{typ: rwVoid}, rwLabel{typ: rwVoid})
		g.brTable()
		g.op(0x0B, 0x0B)
		g.labels = g.labels[:len(g.labels)-2]
	case featCallIndirect:
		if !g.callIndirect(0, false) {
			return false
		}
	case featFill:
		g.fill()
	case featCopy:
		g.copyMem()
	case featSignExt:
		g.signExt(g.intType("type"))
		g.op(0x1A)
	case featTruncSat:
		g.truncSat(g.intType("type"))
		g.op(0x1A)
	case featMemInit:
		g.memInit()
	case featTableGrow:
		g.tableGrow()
		g.op(0x1A)
	case featTableFill:
		g.tableFill()
	case featTableCopy:
		g.tableCopy()
	case featTableInit:
		g.tableInit()
	}
	return true
}

// fold makes run's result: a seed xor every other function's result xor
// every global xor a memory word.
func (g *rwGen) fold() {
	g.op(0x42)
	g.s64(rapid.Int64().Draw(g.t, "seed"))
	for j := 0; j < g.cur; j++ {
		f := g.funcs[j]
		g.args(f)
		g.op(0x10)
		g.u32(uint64(j))
		if f.result != rwVoid {
			g.convert(rwI64, f.result)
			g.op(0x85)
		}
	}
	for j, gl := range g.globals {
		g.op(0x23)
		g.u32(uint64(j))
		g.convert(rwI64, gl.typ)
		g.op(0x85)
	}
	g.op(0x41)
	g.s64(int64(g.intn(rwAddrMask/8, "word") * 8))
	g.op(0x29, 0x03, 0x00, 0x85) // i64.load; i64.xor
	g.op(0xFC, 16)               // table.size of the bulk table
	g.u32(g.bulkTable())
	g.op(0xAD, 0x85) // i64.extend_i32_u; i64.xor
	for i := range rwBulkTableMin {
		g.op(0x41) // bit i: entry i is null
		g.s64(int64(i))
		g.op(0x25) // table.get
		g.u32(g.bulkTable())
		g.op(0xD1, 0xAD, 0x42) // ref.is_null; i64.extend_i32_u; i64.const
		g.s64(int64(i + 32))
		g.op(0x86, 0x85) // i64.shl; i64.xor
	}
}

// writeSomething is the start function's effect: a global or memory write.
func (g *rwGen) writeSomething() {
	for j, gl := range g.globals {
		if gl.mut {
			g.expr(gl.typ)
			g.op(0x24)
			g.u32(uint64(j))
			return
		}
	}
	g.store()
}

func (g *rwGen) op(b ...byte)  { g.code = append(g.code, b...) }
func (g *rwGen) u32(v uint64)  { g.code = rwU32(g.code, v) }
func (g *rwGen) s64(v int64)   { g.code = rwS64(g.code, v) }
func (g *rwGen) mark(f string) { g.seen[f] = true }

// tick charges one instruction, times the enclosing loops' iterations.
func (g *rwGen) tick() { g.cost += g.mult }

// room says whether there is budget, depth and size left for more than a
// leaf.
func (g *rwGen) room() bool {
	return g.depth < rwMaxDepth && g.cost+4*g.mult <= g.budget && len(g.code) < rwMaxCode
}

func (g *rwGen) push(l rwLabel) { g.labels = append(g.labels, l) }
func (g *rwGen) pop()           { g.labels = g.labels[:len(g.labels)-1] }

// --- statements ----------------------------------------------------------

func (g *rwGen) stmts(max int) {
	for n := g.intn(max+1, "stmts"); n > 0; n-- {
		g.stmt()
	}
}

// stmt emits code that leaves the operand stack as it was.
func (g *rwGen) stmt() {
	g.tick()
	if !g.room() {
		g.op(0x01) // nop
		return
	}
	g.depth++
	defer func() { g.depth-- }()
	switch g.pick("stmt", 2, 3, 4, 3, 3, 2, 2, 2, 3, 3, 2, 2, 2, 1, 3, 2, 1, 1, 1, 1, 1) {
	case 0:
		g.op(0x01)
	case 1:
		g.expr(g.intType("type"))
		g.op(0x1A)
	case 2:
		g.setLocal()
	case 3:
		g.setGlobal()
	case 4:
		g.store()
	case 5:
		g.fill()
	case 6:
		g.copyMem()
	case 7:
		g.op(0x02, rwVoid)
		g.push(rwLabel{typ: rwVoid})
		g.stmts(3)
		g.op(0x0B)
		g.pop()
	case 8:
		g.ifStmt()
	case 9:
		g.loop(rwVoid, false, 0)
	case 10:
		g.br()
	case 11:
		g.brIf()
	case 12:
		g.brTable()
	case 13:
		g.ret()
	case 14:
		g.callStmt()
	case 15:
		if !g.callIndirect(0, false) {
			g.op(0x01)
		}
	case 16:
		g.memInit()
	case 17:
		g.tableGrow()
		g.op(0x1A)
	case 18:
		g.tableFill()
	case 19:
		g.tableCopy()
	case 20:
		g.tableInit()
	}
}

func (g *rwGen) setLocal() {
	w := g.fn.writable
	if len(w) == 0 {
		g.op(0x01)
		return
	}
	l := w[g.intn(len(w), "local")]
	g.expr(g.fn.locals[l])
	g.op(0x21)
	g.u32(uint64(l))
}

func (g *rwGen) setGlobal() {
	var muts []int
	for j, gl := range g.globals {
		if gl.mut {
			muts = append(muts, j)
		}
	}
	if len(muts) == 0 {
		g.op(0x01)
		return
	}
	j := muts[g.intn(len(muts), "global")]
	g.expr(g.globals[j].typ)
	g.op(0x24)
	g.u32(uint64(j))
	g.mark(featGlobalSet)
}

// address pushes an address masked so that any access at it, with any
// offset up to rwMaxOffset, stays in the first page.
func (g *rwGen) address() {
	g.expr(rwI32)
	g.op(0x41)
	g.s64(rwAddrMask)
	g.op(0x71)
}

func (g *rwGen) memarg(natural int) {
	g.u32(uint64(g.intn(natural+1, "align")))
	g.u32(uint64(rapid.IntRange(0, rwMaxOffset).Draw(g.t, "offset")))
}

type rwMemOp struct {
	op    byte
	align int // log2 of the access size
}

var (
	rwStores = map[byte][]rwMemOp{rwI32: {{0x36, 2}, {0x3A, 0}, {0x3B, 1}}, rwI64: {{0x37, 3}, {0x3C, 0}, {0x3D, 1}, {0x3E, 2}}}
	rwLoads  = map[byte][]rwMemOp{
		rwI32: {{0x28, 2}, {0x2C, 0}, {0x2D, 0}, {0x2E, 1}, {0x2F, 1}},
		rwI64: {{0x29, 3}, {0x30, 0}, {0x31, 0}, {0x32, 1}, {0x33, 1}, {0x34, 2}, {0x35, 2}},
	}
)

func (g *rwGen) store() {
	t := g.intType("type")
	ops := rwStores[t]
	m := ops[g.intn(len(ops), "store")]
	g.address()
	g.expr(t)
	g.op(m.op)
	g.memarg(m.align)
}

// fill and copyMem keep dst (and src) below rwAddrMask and the length
// below rwLenMask, so they never trap.
func (g *rwGen) fill() {
	g.address()
	g.expr(rwI32)
	g.length()
	g.op(0xFC, 11, 0x00)
	g.mark(featFill)
}

func (g *rwGen) copyMem() {
	g.address()
	g.address()
	g.length()
	g.op(0xFC, 10, 0x00, 0x00)
	g.mark(featCopy)
}

// masked pushes expr & mask: an i32 in [0, mask].
func (g *rwGen) masked(mask int64) {
	g.expr(rwI32)
	g.op(0x41)
	g.s64(mask)
	g.op(0x71)
}

// memInit copies up to 31 bytes of the passive data segment from an
// offset below 32 (never past its 64 bytes) to a masked address.
func (g *rwGen) memInit() {
	g.address()
	g.masked(rwInitMask)
	g.masked(rwInitMask)
	g.op(0xFC, 8)
	g.u32(g.passiveData())
	g.op(0x00)
	g.mark(featMemInit)
}

// tableRef pushes a funcref for the bulk table: null or function 0 (the
// passive element segment declares it).
func (g *rwGen) tableRef() {
	if g.coin("null ref") {
		g.op(0xD0, 0x70)
		return
	}
	g.op(0xD2, 0x00)
}

// tableGrow pushes table.grow's result: the old size, or -1 once the
// table would pass its maximum.
func (g *rwGen) tableGrow() {
	g.tableRef()
	g.masked(0xF)
	g.op(0xFC, 15)
	g.u32(g.bulkTable())
	g.mark(featTableGrow)
}

// tableFill, tableCopy and tableInit stay within the first 8 entries
// (the table never shrinks) or fill the whole table.
func (g *rwGen) tableFill() {
	all := g.coin("fill all")
	if all {
		g.op(0x41, 0x00)
	} else {
		g.masked(3)
	}
	g.tableRef()
	if all {
		g.op(0xFC, 16) // table.size
		g.u32(g.bulkTable())
	} else {
		g.masked(3)
	}
	g.op(0xFC, 17)
	g.u32(g.bulkTable())
	g.mark(featTableFill)
}

func (g *rwGen) tableCopy() {
	g.masked(3)
	g.masked(3)
	g.masked(3)
	g.op(0xFC, 14)
	g.u32(g.bulkTable())
	g.u32(g.bulkTable())
	g.mark(featTableCopy)
}

func (g *rwGen) tableInit() {
	g.masked(3)
	g.masked(3)
	g.masked(3)
	g.op(0xFC, 12, 0x00) // the passive element segment is always index 0
	g.u32(g.bulkTable())
	g.mark(featTableInit)
}

func (g *rwGen) length() {
	g.expr(rwI32)
	g.op(0x41)
	g.s64(rwLenMask)
	g.op(0x71)
}

func (g *rwGen) ifStmt() {
	g.expr(rwI32)
	g.op(0x04, rwVoid)
	g.push(rwLabel{typ: rwVoid})
	g.stmts(3)
	if g.coin("else") {
		g.op(0x05)
		g.mark(featIfElse)
		g.stmts(3)
	}
	g.op(0x0B)
	g.pop()
}

// loop emits a loop whose body runs max(n,1) times for a drawn n: the
// counter is set before the loop, decremented at the bottom, and the back
// edge is taken while it is positive. t is rwVoid for a statement,
// otherwise the loop is an expression of type t; withParam makes it a
// [t] -> [t] loop (a type-indexed block type), which leaves a value on the
// stack at the loop header. nest > 1 puts a nest of nest-1 loops in the
// body (random nesting alone rarely reaches the maximum depth).
func (g *rwGen) loop(t byte, withParam bool, nest int) {
	if g.loops >= rwMaxLoopDepth {
		g.blockLike(t)
		return
	}
	n := g.intn(rwMaxIter+1, "iterations")
	if lim := rwMaxMult / g.mult; n > lim {
		n = lim
	}
	if withParam {
		// Before the counter is set: a loop in this expression would
		// use the same counter.
		g.expr(t)
	}
	c := g.fn.counters[g.loops]
	g.op(0x41)
	g.s64(int64(n))
	g.op(0x21)
	g.u32(uint64(c))
	if withParam {
		g.op(0x03)
		g.s64(int64(g.typeIdx([]byte{t}, []byte{t})))
		g.mark(featLoopParam)
	} else {
		g.op(0x03, t)
	}
	g.mark(featLoop)
	if g.loops == rwMaxLoopDepth-1 {
		g.mark(featNested3)
	}
	if t != rwVoid {
		g.mark(featLoopValue)
	}
	g.push(rwLabel{typ: t, loop: true})
	saved := g.mult
	g.mult *= max(n, 1)
	g.loops++
	g.cost += 7 * g.mult // the counter test
	g.stmts(3)
	if nest > 1 {
		g.loop(rwVoid, false, nest-1)
		g.stmts(1)
	}
	early := t != rwVoid && !withParam && g.coin("value first")
	if withParam {
		g.expr(t)
		g.binop(t)
	} else if early {
		g.expr(t)
	}
	g.op(0x20)
	g.u32(uint64(c))
	g.op(0x41, 0x01, 0x6B, 0x22) // i32.const 1; i32.sub; local.tee
	g.u32(uint64(c))
	g.op(0x41, 0x00, 0x4A, 0x0D, 0x00) // i32.const 0; i32.gt_s; br_if 0
	if t != rwVoid && !withParam && !early {
		g.expr(t)
	}
	g.op(0x0B)
	g.loops--
	g.mult = saved
	g.pop()
}

// blockLike stands in for a loop nested too deep.
func (g *rwGen) blockLike(t byte) {
	g.op(0x02, t)
	g.push(rwLabel{typ: t})
	g.stmts(2)
	if t != rwVoid {
		g.expr(t)
	}
	g.op(0x0B)
	g.pop()
}

// targets lists the relative depths of the labels a branch may take,
// optionally only those carrying typ.
func (g *rwGen) targets(typ byte, any bool) []int {
	var out []int
	for i, l := range g.labels {
		if !l.loop && (any || l.typ == typ) {
			out = append(out, len(g.labels)-1-i)
		}
	}
	return out
}

func (g *rwGen) labelAt(depth int) rwLabel { return g.labels[len(g.labels)-1-depth] }

// dead sometimes follows an unconditional branch with unreachable, which
// a rewriter must leave alone.
func (g *rwGen) dead() {
	if g.intn(3, "dead") == 0 {
		g.op(0x00)
		g.mark(featDeadCode)
	}
}

func (g *rwGen) br() {
	ts := g.targets(0, true)
	d := ts[g.intn(len(ts), "br")]
	if typ := g.labelAt(d).typ; typ != rwVoid {
		g.expr(typ)
	}
	g.op(0x0C)
	g.u32(uint64(d))
	g.mark(featBr)
	g.dead()
}

func (g *rwGen) brIf() {
	ts := g.targets(0, true)
	d := ts[g.intn(len(ts), "br_if")]
	typ := g.labelAt(d).typ
	if typ != rwVoid {
		g.expr(typ)
	}
	g.expr(rwI32)
	g.op(0x0D)
	g.u32(uint64(d))
	g.mark(featBrIf)
	if typ != rwVoid {
		g.op(0x1A)
	}
}

// brTable branches to labels of one type, the index an arbitrary i32 (out
// of range takes the default).
func (g *rwGen) brTable() {
	ts := g.targets(0, true)
	def := ts[g.intn(len(ts), "br_table default")]
	typ := g.labelAt(def).typ
	same := g.targets(typ, false)
	if typ != rwVoid {
		g.expr(typ)
	}
	g.expr(rwI32)
	if g.coin("mask index") {
		g.op(0x41, 0x07, 0x71)
	}
	n := g.intn(6, "br_table size")
	g.op(0x0E)
	g.u32(uint64(n))
	for ; n > 0; n-- {
		g.u32(uint64(same[g.intn(len(same), "br_table entry")]))
	}
	g.u32(uint64(def))
	g.mark(featBrTable)
	g.dead()
}

func (g *rwGen) ret() {
	if g.fn.result != rwVoid {
		g.expr(g.fn.result)
	}
	g.op(0x0F)
	g.mark(featReturn)
	g.dead()
}

func (g *rwGen) callStmt() {
	j, ok := g.callee(0, true)
	if !ok {
		g.op(0x01)
		return
	}
	g.call(j)
	if g.funcs[j].result != rwVoid {
		g.op(0x1A)
	}
}

// --- calls ---------------------------------------------------------------

// callee draws a lower-indexed function returning t (any result, void
// included, if any) that the budget can afford.
func (g *rwGen) callee(t byte, any bool) (int, bool) {
	var cs []int
	for j := 0; j < g.cur; j++ {
		f := g.funcs[j]
		if (any || f.result == t) && g.affords(f) {
			cs = append(cs, j)
		}
	}
	if len(cs) == 0 {
		return 0, false
	}
	return cs[g.intn(len(cs), "callee")], true
}

func (g *rwGen) affords(f *rwFunc) bool { return g.cost+g.mult*f.cost <= g.budget }

func (g *rwGen) call(j int) {
	f := g.funcs[j]
	g.args(f)
	g.op(0x10)
	g.u32(uint64(j))
	g.cost += g.mult * f.cost
	g.mark(featCall)
}

// args pushes f's arguments, masking a recursion depth to 0..7.
func (g *rwGen) args(f *rwFunc) {
	for i, p := range f.params {
		g.expr(p)
		if i == 0 && f.depthArg {
			g.op(0x41, rwRecDepthMask, 0x71)
		}
	}
}

// callIndirect calls through a constant table slot holding a
// lower-indexed function with result t (any result if t is 0), dropping
// the result when t is 0. It reports false when no slot fits.
func (g *rwGen) callIndirect(t byte, keep bool) bool {
	var slots []int
	for s, j := range g.table {
		f := g.funcs[j]
		if j < g.cur && (t == 0 || f.result == t) && g.affords(f) {
			slots = append(slots, s)
		}
	}
	if len(slots) == 0 {
		return false
	}
	s := slots[g.intn(len(slots), "slot")]
	f := g.funcs[g.table[s]]
	g.args(f)
	g.op(0x41)
	g.s64(int64(s))
	g.op(0x11)
	g.u32(uint64(f.typeIdx))
	g.op(0x00)
	g.cost += g.mult * f.cost
	if !keep && f.result != rwVoid {
		g.op(0x1A)
	}
	g.mark(featCallIndirect)
	return true
}

// --- integer expressions -------------------------------------------------

// expr emits code pushing exactly one value of type t (i32 or i64).
func (g *rwGen) expr(t byte) {
	g.tick()
	if !g.room() {
		g.leaf(t)
		return
	}
	g.depth++
	defer func() { g.depth-- }()
	switch g.pick("expr", 6, 5, 2, 3, 2, 2, 2, 3, 2, 2, 3, 2, 2, 2, 2, 2, 1, 1) {
	case 0:
		g.leaf(t)
	case 1:
		g.expr(t)
		g.expr(t)
		g.binop(t)
	case 2:
		g.divide(t)
	case 3:
		g.unary(t)
	case 4:
		g.compare(t)
	case 5:
		g.expr(rwI32 + rwI64 - t) // the other type
		g.convert(t, rwI32+rwI64-t)
	case 6:
		g.signExt(t)
	case 7:
		g.truncSat(t)
	case 8:
		g.load(t)
	case 9:
		g.tee(t)
	case 10:
		g.blockExpr(t)
	case 11:
		g.ifExpr(t)
	case 12:
		g.loop(t, g.intn(3, "loop param") == 0, 0)
	case 13:
		g.selectExpr(t)
	case 14:
		g.callExpr(t)
	case 15:
		if !g.callIndirect(t, true) {
			g.leaf(t)
		}
	case 16:
		g.brIfExpr(t)
	case 17:
		g.memSize(t)
	}
}

// leaf is a constant, a local or a global of type t.
func (g *rwGen) leaf(t byte) {
	switch g.pick("leaf", 3, 3, 1) {
	case 1:
		if l, ok := g.localOf(t, false); ok {
			g.op(0x20)
			g.u32(uint64(l))
			return
		}
	case 2:
		for j, gl := range g.globals {
			if gl.typ == t {
				g.op(0x23)
				g.u32(uint64(j))
				return
			}
		}
	}
	g.constant(t)
}

func (g *rwGen) constant(t byte) {
	if t == rwI32 {
		g.op(0x41)
		g.s64(int64(rapid.Int32().Draw(g.t, "i32")))
		return
	}
	g.op(0x42)
	g.s64(rapid.Int64().Draw(g.t, "i64"))
}

// localOf draws a local of type t, among those the body may write if
// writable (never a loop counter or the recursion depth).
func (g *rwGen) localOf(t byte, writable bool) (uint32, bool) {
	var cs []uint32
	if writable {
		for _, i := range g.fn.writable {
			if g.fn.locals[i] == t {
				cs = append(cs, i)
			}
		}
	} else {
		for i, lt := range g.fn.locals {
			if lt == t {
				cs = append(cs, uint32(i))
			}
		}
	}
	if len(cs) == 0 {
		return 0, false
	}
	return cs[g.intn(len(cs), "local")], true
}

var rwBinops = map[byte][]byte{
	rwI32: {0x6A, 0x6B, 0x6C, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78},
	rwI64: {0x7C, 0x7D, 0x7E, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A},
}

func (g *rwGen) binop(t byte) {
	ops := rwBinops[t]
	g.op(ops[g.intn(len(ops), "binop")])
}

// divide divides by a constant that is neither 0 nor -1 (INT_MIN / -1
// traps for div_s).
func (g *rwGen) divide(t byte) {
	g.expr(t)
	d := int64(1 + g.intn(1000, "divisor"))
	if d > 1 && g.coin("negative") {
		d = -d
	}
	if t == rwI32 {
		g.op(0x41)
		g.s64(d)
		g.op(0x6D + byte(g.intn(4, "div op"))) // div_s div_u rem_s rem_u
	} else {
		g.op(0x42)
		g.s64(d)
		g.op(0x7F + byte(g.intn(4, "div op")))
	}
	g.mark(featDiv)
}

func (g *rwGen) unary(t byte) {
	switch {
	case g.coin("eqz"):
		u := g.intType("type")
		g.expr(u)
		g.op(map[byte]byte{rwI32: 0x45, rwI64: 0x50}[u])
		g.convert(t, rwI32)
	case t == rwI32:
		g.expr(t)
		g.op(0x67 + byte(g.intn(3, "bitcount"))) // clz ctz popcnt
	default:
		g.expr(t)
		g.op(0x79 + byte(g.intn(3, "bitcount")))
	}
}

// compare pushes a comparison of two values of any type, then converts.
func (g *rwGen) compare(t byte) {
	switch g.intn(4, "compare type") {
	case 0:
		g.expr(rwI32)
		g.expr(rwI32)
		g.op(0x46 + byte(g.intn(10, "relop")))
	case 1:
		g.expr(rwI64)
		g.expr(rwI64)
		g.op(0x51 + byte(g.intn(10, "relop")))
	case 2:
		g.mark(featFloatCmp)
		g.fexpr(rwF32)
		g.fexpr(rwF32)
		g.op(0x5B + byte(g.intn(6, "frelop")))
	case 3:
		g.mark(featFloatCmp)
		g.fexpr(rwF64)
		g.fexpr(rwF64)
		g.op(0x61 + byte(g.intn(6, "frelop")))
	}
	g.convert(t, rwI32)
}

// convert turns the value on the stack from type from into type to.
func (g *rwGen) convert(to, from byte) {
	switch {
	case to == from:
	case to == rwI32:
		g.op(0xA7) // i32.wrap_i64
	case g.coin("signed"):
		g.op(0xAC) // i64.extend_i32_s
	default:
		g.op(0xAD)
	}
}

func (g *rwGen) signExt(t byte) {
	g.expr(t)
	if t == rwI32 {
		g.op(0xC0 + byte(g.intn(2, "extend")))
	} else {
		g.op(0xC2 + byte(g.intn(3, "extend")))
	}
	g.mark(featSignExt)
}

// truncSat converts a float expression: 0xFC 0..3 give i32, 4..7 i64.
func (g *rwGen) truncSat(t byte) {
	src := rwF32
	sub := byte(g.intn(2, "unsigned"))
	if g.coin("f64") {
		src, sub = rwF64, sub+2
	}
	if t == rwI64 {
		sub += 4
	}
	g.fexpr(src)
	g.op(0xFC, sub)
	g.mark(featTruncSat)
}

func (g *rwGen) load(t byte) {
	ops := rwLoads[t]
	m := ops[g.intn(len(ops), "load")]
	g.address()
	g.op(m.op)
	g.memarg(m.align)
	g.mark(featLoadStore)
}

func (g *rwGen) tee(t byte) {
	l, ok := g.localOf(t, true)
	if !ok {
		g.leaf(t)
		return
	}
	g.expr(t)
	g.op(0x22)
	g.u32(uint64(l))
	g.mark(featTee)
}

// blockExpr is a block of type t, sometimes taking a t parameter through a
// type-indexed block type.
func (g *rwGen) blockExpr(t byte) {
	param := g.intn(3, "block param") == 0
	if param {
		g.expr(t)
		g.op(0x02)
		g.s64(int64(g.typeIdx([]byte{t}, []byte{t})))
		g.mark(featBlockParam)
	} else {
		g.op(0x02, t)
	}
	g.push(rwLabel{typ: t})
	g.stmts(3)
	g.expr(t)
	if param {
		g.binop(t)
	}
	g.op(0x0B)
	g.pop()
}

func (g *rwGen) ifExpr(t byte) {
	g.expr(rwI32)
	g.op(0x04, t)
	g.push(rwLabel{typ: t})
	g.stmts(2)
	g.expr(t)
	g.op(0x05)
	g.mark(featIfElse)
	g.stmts(2)
	g.expr(t)
	g.op(0x0B)
	g.pop()
}

// selectExpr uses the plain or the typed (0x1C) select.
func (g *rwGen) selectExpr(t byte) {
	g.expr(t)
	g.expr(t)
	g.expr(rwI32)
	g.mark(featSelect)
	if g.coin("typed select") {
		g.op(0x1C, 0x01, t)
		g.mark(featSelectT)
	} else {
		g.op(0x1B)
	}
}

func (g *rwGen) callExpr(t byte) {
	u := g.intType("call type")
	j, ok := g.callee(u, false)
	if !ok {
		g.leaf(t)
		return
	}
	g.call(j)
	g.convert(t, u)
}

// brIfExpr leaves its operand when the branch is not taken.
func (g *rwGen) brIfExpr(t byte) {
	ts := g.targets(t, false)
	if len(ts) == 0 {
		g.leaf(t)
		return
	}
	d := ts[g.intn(len(ts), "br_if")]
	g.expr(t)
	g.expr(rwI32)
	g.op(0x0D)
	g.u32(uint64(d))
	g.mark(featBrIf)
}

// memSize is memory.size or memory.grow by 0 or 1 page (the maximum is
// 2 pages: later grows return -1).
func (g *rwGen) memSize(t byte) {
	if g.coin("grow") {
		g.masked(1)
		g.op(0x40, 0x00)
		g.mark(featMemGrow)
	} else {
		g.op(0x3F, 0x00)
	}
	g.convert(t, rwI32)
}

// --- float expressions ---------------------------------------------------

// fexpr pushes a float of type t. Floats never reach an integer except
// through saturating truncation or comparison, so NaN bit patterns (which
// engines may produce differently) cannot show.
func (g *rwGen) fexpr(t byte) {
	g.tick()
	if !g.room() {
		g.fconst(t)
		return
	}
	g.depth++
	defer func() { g.depth-- }()
	f64 := t == rwF64
	switch g.pick("fexpr", 3, 3, 2, 3, 1, 1) {
	case 0:
		g.fconst(t)
	case 1: // convert an integer: f32 0xB2..0xB5, f64 0xB7..0xBA
		u := g.intType("from")
		g.expr(u)
		op := byte(0xB2 + g.intn(2, "unsigned"))
		if u == rwI64 {
			op += 2
		}
		if f64 {
			op += 5
		}
		g.op(op)
	case 2: // abs neg ceil floor trunc nearest sqrt
		g.fexpr(t)
		g.op(map[bool]byte{false: 0x8B, true: 0x99}[f64] + byte(g.intn(7, "funop")))
	case 3: // add sub mul div min max
		g.fexpr(t)
		g.fexpr(t)
		g.op(map[bool]byte{false: 0x92, true: 0xA0}[f64] + byte(g.intn(6, "fbinop")))
	case 4: // demote / promote
		if f64 {
			g.fexpr(rwF32)
			g.op(0xBB)
		} else {
			g.fexpr(rwF64)
			g.op(0xB6)
		}
	case 5:
		g.fexpr(t)
		g.fexpr(t)
		g.expr(rwI32)
		g.op(0x1B)
	}
}

var rwFloats = []float64{0, -0.5, 1.5, -1e3, 2147483648, 4294967296, -9.3e18, 1.8e19, 1e40, math.Inf(1), math.Inf(-1), math.NaN()}

func (g *rwGen) fconst(t byte) {
	v := rwFloats[g.intn(len(rwFloats), "float")]
	if g.coin("small float") {
		v = float64(rapid.IntRange(-100000, 100000).Draw(g.t, "float int")) / 8
	}
	if t == rwF32 {
		g.op(0x43)
		g.code = binary.LittleEndian.AppendUint32(g.code, math.Float32bits(float32(v)))
		return
	}
	g.op(0x44)
	g.code = binary.LittleEndian.AppendUint64(g.code, math.Float64bits(v))
}

// --- module assembly -----------------------------------------------------

func (g *rwGen) assemble() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = rwSection(out, 1, g.typeSection())
	out = rwSection(out, 3, g.funcSection())
	tables := []byte{1}
	if g.table != nil {
		n := uint64(len(g.table))
		tables = rwU32(rwU32([]byte{2, 0x70, 0x01}, n), n) // funcref, min=max
	}
	tables = append(tables, 0x70, 0x01, rwBulkTableMin, rwBulkTableMax) // the bulk table
	out = rwSection(out, 4, tables)
	out = rwSection(out, 5, []byte{1, 0x01, 1, 2}) // one memory, min 1 max 2
	if len(g.globals) > 0 {
		out = rwSection(out, 6, g.globalSection())
	}
	out = rwSection(out, 7, g.exportSection())
	if g.start >= 0 {
		out = rwSection(out, 8, rwU32(nil, uint64(g.start)))
	}
	out = rwSection(out, 9, g.elemSection())
	out = rwSection(out, 12, []byte{byte(g.passiveData() + 1)}) // data count
	out = rwSection(out, 10, g.codeSection())
	d := rwU32(nil, g.passiveData()+1)
	if g.data != nil {
		d = append(rwS64(append(d, 0x00, 0x41), int64(g.dataAt)), 0x0B)
		d = append(rwU32(d, uint64(len(g.data))), g.data...)
	}
	d = append(rwU32(append(d, 0x01), rwPassiveLen), g.passive...) // passive
	return rwSection(out, 11, d)
}

func (g *rwGen) typeSection() []byte {
	p := rwU32(nil, uint64(len(g.types)))
	for _, k := range g.types {
		var params, results string
		for i := range k {
			if k[i] == ':' {
				params, results = k[:i], k[i+1:]
			}
		}
		p = append(p, 0x60)
		p = append(rwU32(p, uint64(len(params))), params...)
		p = append(rwU32(p, uint64(len(results))), results...)
	}
	return p
}

func (g *rwGen) funcSection() []byte {
	p := rwU32(nil, uint64(len(g.funcs)))
	for _, f := range g.funcs {
		p = rwU32(p, uint64(f.typeIdx))
	}
	return p
}

func (g *rwGen) globalSection() []byte {
	p := rwU32(nil, uint64(len(g.globals)))
	for _, gl := range g.globals {
		mut := byte(0)
		if gl.mut {
			mut = 1
		}
		p = append(p, gl.typ, mut)
		if gl.typ == rwI32 {
			p = rwS64(append(p, 0x41), int64(int32(gl.init)))
		} else {
			p = rwS64(append(p, 0x42), gl.init)
		}
		p = append(p, 0x0B)
	}
	return p
}

func (g *rwGen) exportSection() []byte {
	p := []byte{2}
	p = append(rwU32(p, 6), "memory"...)
	p = append(p, 0x02, 0x00)
	p = append(rwU32(p, 3), "run"...)
	return rwU32(append(p, 0x00), uint64(len(g.funcs)-1))
}

// elemSection: the passive segment for table.init (index 0: null or
// ref.func 0, which it thereby declares), then call_indirect's table's
// active one.
func (g *rwGen) elemSection() []byte {
	p := []byte{1, 0x05, 0x70, rwElemLen} // passive, funcref expressions
	if g.table != nil {
		p[0] = 2
	}
	for _, null := range g.elemNull {
		if null {
			p = append(p, 0xD0, 0x70, 0x0B)
		} else {
			p = append(p, 0xD2, 0x00, 0x0B)
		}
	}
	if g.table == nil {
		return p
	}
	p = append(p, 0x00, 0x41, 0x00, 0x0B) // active, table 0, offset 0
	p = rwU32(p, uint64(len(g.table)))
	for _, j := range g.table {
		p = rwU32(p, uint64(j))
	}
	return p
}

func (g *rwGen) codeSection() []byte {
	p := rwU32(nil, uint64(len(g.funcs)))
	for _, f := range g.funcs {
		body := append(append([]byte(nil), f.decl...), f.code...)
		p = append(rwU32(p, uint64(len(body))), body...)
	}
	return p
}

func rwSection(out []byte, id byte, payload []byte) []byte {
	out = rwU32(append(out, id), uint64(len(payload)))
	return append(out, payload...)
}

func rwU32(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// rwS64 appends v as signed LEB128 (the instrumenter's encoder).
func rwS64(b []byte, v int64) []byte { return appendS64(b, v) }
