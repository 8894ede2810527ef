package arch

import "testing"

func TestX86RepString(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		mode int
		want bool
	}{
		{"rep stosq", []byte{0xf3, 0x48, 0xab}, 64, true},
		{"rep stosb", []byte{0xf3, 0xaa}, 64, true},
		{"rep movsb", []byte{0xf3, 0xa4}, 64, true},
		{"rep movsq", []byte{0xf3, 0x48, 0xa5}, 64, true},
		{"rep movsd (32-bit)", []byte{0xf3, 0xa5}, 32, true},
		{"rep movsw (16-bit)", []byte{0xf3, 0xa5}, 16, true},
		{"repe cmpsb", []byte{0xf3, 0xa6}, 64, true},
		{"repne scasb", []byte{0xf2, 0xae}, 64, true},
		{"rep lodsb", []byte{0xf3, 0xac}, 64, true},
		{"rep insb", []byte{0xf3, 0x6c}, 64, true},
		{"rep outsb", []byte{0xf3, 0x6e}, 64, true},
		{"rep stosb with addr32", []byte{0x67, 0xf3, 0xaa}, 64, true},
		{"stosq without rep", []byte{0x48, 0xab}, 64, false},
		{"movsb without rep", []byte{0xa4}, 64, false},
		{"pause (rep nop)", []byte{0xf3, 0x90}, 64, false},
		{"rep ret", []byte{0xf3, 0xc3}, 64, false},
		{"rep bsf (tzcnt)", []byte{0xf3, 0x48, 0x0f, 0xbc, 0xc0}, 64, false},
		{"endbr64", []byte{0xf3, 0x0f, 0x1e, 0xfa}, 64, false},
		{"mov", []byte{0x48, 0x89, 0xe5}, 64, false},
		{"empty", nil, 64, false},
		{"truncated", []byte{0xf3}, 64, false},
		{"default mode", []byte{0xf3, 0x48, 0xab}, 0, true},
	} {
		if got := X86RepString(tc.code, tc.mode); got != tc.want {
			t.Errorf("%s (% x, mode %d): got %v, want %v", tc.name, tc.code, tc.mode, got, tc.want)
		}
	}
}
