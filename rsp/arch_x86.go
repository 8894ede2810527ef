package rsp

// x86_64 names rip/rsp/rbp and puts the control, base and mode registers
// that QEMU lists in its core feature into "system".
var x86_64 = arch{
	special: [3]string{"rip", "rsp", "rbp"},
	groups:  x86System,
}

// i386 is 32-bit x86.
var i386 = arch{
	special: [3]string{"eip", "esp", "ebp"},
	groups:  x86System,
}

var x86System = map[string]string{
	"fs_base": "system", "gs_base": "system", "k_gs_base": "system",
	"cr0": "system", "cr2": "system", "cr3": "system", "cr4": "system", "cr8": "system",
	"efer": "system", "orig_rax": "system", "orig_eax": "system",
}
