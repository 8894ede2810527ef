package scenario_test

import (
	"fmt"
	"path/filepath"

	"github.com/lockstep-dev/lockstep/scenario"
)

// ExampleLoad loads the demo scenario and prints its effective settings.
func ExampleLoad() {
	s, err := scenario.Load("../testdata/scenarios/demo.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Expect, s.Timeout)
	for _, g := range s.Guests {
		fmt.Println(g.Side, g.Label, g.Accel, g.CPU, filepath.Base(g.Symbols))
	}
	for _, sp := range s.Sync {
		fmt.Println(sp.Break, sp.Hit, sp.Compare.Registers, sp.Compare.CallPath, len(sp.Compare.Memory), s.PosOf(fmt.Sprintf("sync[%d].break", sp.Index)))
	}
	// Output:
	// demo-regression diverge 1m0s
	// a good tcg qemu64 demo-good.elf
	// b regressed tcg qemu64 demo-bad.elf
	// kmain 1 [general] none 0 ../testdata/scenarios/demo.yaml:22:12
	// checksum 3 [rdi rsi rax] none 0 ../testdata/scenarios/demo.yaml:23:12
	// leaf 1 [general] backtrace 0 ../testdata/scenarios/demo.yaml:26:12
	// marker 1 [rdi rsi] none 0 ../testdata/scenarios/demo.yaml:28:12
	// report 1 [general] none 1 ../testdata/scenarios/demo.yaml:30:12
}
