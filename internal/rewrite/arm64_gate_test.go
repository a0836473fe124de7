package rewrite

import (
	"fmt"
	"testing"
)

func movzX8w(nr uint32) uint32 { return 0xd2800008 | nr<<5 }

// TestARM64WrapperNumbers: svc numbers from a movz x8 just before, the
// cancellation calls' numbers, and the unknown svc are told apart; a clone
// or clone3 site (direct or through a cancel call) is a fork site.
func TestARM64WrapperNumbers(t *testing.T) {
	for _, c := range []struct {
		name    string
		code    []byte
		nrs     []uint16
		unknown int
		fork    bool
	}{
		{"getpid", code(movzX8w(172), tSVC, tRET), []uint16{172}, 0, false},
		{"clone", code(movzX8w(220), tNOP, movReg(0, 1), tSVC, tRET), []uint16{220}, 0, true},
		{"clone3", code(movzX8w(435), tSVC, tRET), []uint16{435}, 0, true},
		{"w8 form", code(0x52801b88, tSVC, tRET), []uint16{220}, 0, true},
		{"x8 from a register", code(movReg(8, 0), tSVC, tRET), nil, 1, false},
		{"movz then x8 rewritten", code(movzX8w(220), movReg(8, 1), tSVC, tRET), nil, 1, false},
		{"branch between", code(movzX8w(220), b(4, 8), tSVC, tRET), nil, 1, false},
		{"movz too far", code(movzX8w(220), tNOP, tNOP, tNOP, tNOP, tSVC), nil, 1, false},
		{"cancel call to close", cancelCode(57, bl, 4), []uint16{57}, 1, false},
		{"cancel call to clone", cancelCode(220, bl, 4), []uint16{220}, 1, true},
	} {
		nrs, unknown := ARM64.WrapperNumbers(c.code)
		if fmt.Sprint(nrs) != fmt.Sprint(c.nrs) || unknown != c.unknown {
			t.Errorf("%s: WrapperNumbers = %v, %d; want %v, %d", c.name, nrs, unknown, c.nrs, c.unknown)
		}
		if got := ARM64.HasForkSite(c.code); got != c.fork {
			t.Errorf("%s: HasForkSite = %v, want %v", c.name, got, c.fork)
		}
	}
}
