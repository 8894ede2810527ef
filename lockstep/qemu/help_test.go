package qemu

import (
	"context"
	"os/exec"
	"slices"
	"testing"
)

func TestParseHelp(t *testing.T) {
	t.Parallel()
	cpu := parseCPUHelp("Available CPUs:\nx86 486                   (alias configured by machine type)\nx86 qemu64                QEMU Virtual CPU version 2.5+\n\nRecognized CPUID flags:\n  3dnow sse4.2\n")
	for _, w := range []string{"486", "qemu64"} {
		if !slices.Contains(cpu, w) {
			t.Errorf("cpu models %v lack %s", cpu, w)
		}
	}
	if slices.Contains(cpu, "sse4.2") || slices.Contains(cpu, "3dnow") {
		t.Errorf("cpu models %v include CPUID flags", cpu)
	}
	if arm := parseCPUHelp("Available CPUs:\n  a64fx\n  cortex-a57\n"); !slices.Contains(arm, "cortex-a57") {
		t.Errorf("aarch64 models %v lack cortex-a57", arm)
	}
	m := parseMachineHelp("Supported machines are:\npc                   Standard PC (alias of pc-i440fx-7.2)\nq35                  Standard PC (Q35 + ICH9, 2009)\n")
	if !slices.Equal(m, []string{"pc", "q35"}) {
		t.Errorf("machines %v, want [pc q35]", m)
	}
}

// TestHelpLists runs the real binary twice; the second answer comes from
// the cache.
func TestHelpLists(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	for range 2 {
		cpus, err := CPUModels(context.Background(), bin)
		if err != nil || !slices.Contains(cpus, "qemu64") || !slices.Contains(cpus, "max") {
			t.Fatalf("CPUModels = %v, %v", cpus, err)
		}
		ms, err := MachineTypes(context.Background(), bin)
		if err != nil || !slices.Contains(ms, "pc") || !slices.Contains(ms, "q35") {
			t.Fatalf("MachineTypes = %v, %v", ms, err)
		}
	}
}
