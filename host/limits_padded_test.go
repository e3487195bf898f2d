package host

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// paddedTableGrowModule is a hand-built module whose only function grows
// a table declared without a maximum, with table.grow's sub-opcode written
// as a padded LEB128 (FC 8F 00): valid Wasm that a byte search for FC 0F
// misses.
func paddedTableGrowModule() []byte {
	return []byte{
		0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7F, // type: () -> i32
		0x03, 0x02, 0x01, 0x00, // function 0 of type 0
		0x04, 0x04, 0x01, 0x70, 0x00, 0x01, // table: funcref, min 1, no maximum
		0x0A, 0x0C, 0x01, 0x0A, // code: one body of 10 bytes
		0x00,       // no locals
		0xD0, 0x70, // ref.null func
		0x41, 0x05, // i32.const 5
		0xFC, 0x8F, 0x00, 0x00, // table.grow 0, sub-opcode 15 padded to two bytes
		0x0B,
	}
}

// Review finding (issue 12 limits): table.grow spelled with a padded
// sub-opcode escaped the load check, so the table kept no maximum and
// could grow without bound across calls. The check must cap it too.
func TestPaddedTableGrowIsCappedLikeAnyOther(t *testing.T) {
	bin := paddedTableGrowModule()
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	if _, err := rt.CompileModule(context.Background(), bin); err != nil {
		t.Fatalf("the fixture is not valid Wasm: %v", err)
	}
	l := defaultModuleLimits()
	l.TableElementsMax, l.TableElementsTotalMax = 1000, 1000
	capped, err := checkModuleLimits(bin, Limits{ModuleLimits: l})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(capped, bin) {
		t.Fatal("table.grow with a padded sub-opcode was not seen: the table keeps no maximum")
	}
	if _, err := rt.CompileModule(context.Background(), capped); err != nil {
		t.Fatalf("capped module is invalid: %v", err)
	}
}
