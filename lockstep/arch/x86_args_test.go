package arch

import (
	"reflect"
	"testing"
)

func TestX86LiveArgs(t *testing.T) {
	const fentry = 0x2000
	tests := []struct {
		name string
		code []byte
		want []bool // rdi rsi rdx rcx r8 r9
	}{
		// push %rbp; mov %rsp,%rbp; mov %rdi,%rax; ret
		{"one argument", []byte{0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8, 0xc3},
			[]bool{true, false, false, false, false, false}},
		// xor %esi,%esi; mov %rdi,%rax; add %rdx,%rax; ret
		{"zeroed is dead", []byte{0x31, 0xf6, 0x48, 0x89, 0xf8, 0x48, 0x01, 0xd0, 0xc3},
			[]bool{true, false, true, false, false, false}},
		// mov $1,%esi; cmp %rsi,%rdi; je +0
		{"branch keeps untouched live", []byte{0xbe, 0x01, 0, 0, 0, 0x48, 0x39, 0xf7, 0x74, 0x00},
			[]bool{true, false, true, true, true, true}},
		// call __fentry__ (rel32 to 0x2000 from 0x1005); mov %rsi,%rax; ret
		{"fentry skipped", []byte{0xe8, 0xfb, 0x0f, 0, 0, 0x48, 0x89, 0xf0, 0xc3},
			[]bool{false, true, false, false, false, false}},
		// call to an unknown target: everything untouched is live
		{"call unknown", []byte{0xe8, 0x00, 0x01, 0, 0}, []bool{true, true, true, true, true, true}},
		// mov %rdi,%rbx; call 0x3000 (reads rsi only): rdi read, rsi handed on, the rest clobbered
		{"call known", []byte{0x48, 0x89, 0xfb, 0xe8, 0xf8, 0x1f, 0, 0}, []bool{true, true, false, false, false, false}},
		// jmp 0x3000: a tail call hands every argument on
		{"tail call", []byte{0xe9, 0xfb, 0x1f, 0, 0}, []bool{false, true, false, false, false, false}},
		// mov (%rdi),%rax: a base register is read
		{"memory operand", []byte{0x48, 0x8b, 0x07, 0xc3}, []bool{true, false, false, false, false, false}},
		// mov %sil,%al: a partial read counts
		{"partial read", []byte{0x40, 0x88, 0xf0, 0xc3}, []bool{false, true, false, false, false, false}},
		{"undecodable", []byte{0x0f}, []bool{true, true, true, true, true, true}},
		// test %rdi,%rdi; je +4; mov %rsi,%rax; ret; xor %eax,%eax; ret: both ways followed
		{"both ways of a branch", []byte{0x48, 0x85, 0xff, 0x74, 0x04, 0x48, 0x89, 0xf0, 0xc3, 0x31, 0xc0, 0xc3},
			[]bool{true, true, false, false, false, false}},
		// xor %eax,%eax; add %rdi,%rax; dec %rcx; jne -8; ret: a loop, followed once
		{"loop", []byte{0x31, 0xc0, 0x48, 0x01, 0xf8, 0x48, 0xff, 0xc9, 0x75, 0xf8, 0xc3},
			[]bool{true, false, false, true, false, false}},
		// test %rdi,%rdi; je +5 (to the ret); call 0x3000; ret: the call's answer on one path only
		{"call on one path", []byte{0x48, 0x85, 0xff, 0x74, 0x05, 0xe8, 0xf6, 0x1f, 0, 0, 0xc3},
			[]bool{true, true, false, false, false, false}},
		// jmp *%rax: an indirect jump leaves everything live
		{"indirect jump", []byte{0xff, 0xe0}, []bool{true, true, true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := X86LiveArgs(tt.code, 0x1000, func(a uint64) ([]bool, bool) {
				switch a {
				case fentry:
					return nil, true
				case 0x3000:
					return []bool{false, true, false, false, false, false}, false
				}
				return nil, false
			})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("live %v, want %v", got, tt.want)
			}
		})
	}
}
