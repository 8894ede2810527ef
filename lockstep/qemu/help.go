package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// helpTimeout bounds one `-cpu help` or `-machine help` run.
const helpTimeout = 20 * time.Second

// helpKey identifies a binary and one of its help lists; the file's size
// and modification time make a rebuilt binary a new key.
type helpKey struct {
	path  string
	size  int64
	mtime time.Time
	what  string
}

var helpCache sync.Map // helpKey -> []string

// CPUModels returns the CPU model names QEMU binary bin lists for
// `-cpu help` (aliases included), cached per binary.
func CPUModels(ctx context.Context, bin string) ([]string, error) {
	return helpList(ctx, bin, "-cpu", parseCPUHelp)
}

// MachineTypes returns the machine type names QEMU binary bin lists for
// `-machine help` (aliases included), cached per binary.
func MachineTypes(ctx context.Context, bin string) ([]string, error) {
	return helpList(ctx, bin, "-machine", parseMachineHelp)
}

func helpList(ctx context.Context, bin, flag string, parse func(string) []string) ([]string, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu %s help: %w", flag, err)
	}
	key := helpKey{bin, fi.Size(), fi.ModTime(), flag}
	if v, ok := helpCache.Load(key); ok {
		return v.([]string), nil
	}
	ctx, cancel := context.WithTimeout(ctx, helpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, flag, "help", "-display", "none", "-nodefaults")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("qemu %s help: %s: %w", flag, bin, err)
	}
	names := parse(string(out))
	if len(names) == 0 {
		return nil, fmt.Errorf("qemu %s help: %s: no names in its output", flag, bin)
	}
	helpCache.Store(key, names)
	return names, nil
}

// parseCPUHelp takes the model names from `-cpu help`: the first word of
// each line, and the second where the first names the architecture
// ("x86 qemu64  QEMU Virtual CPU", "PowerPC 970_v2.2 PVR …", "s390
// z900-base …"), up to x86's list of CPUID flags.
func parseCPUHelp(out string) []string {
	var names []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "Recognized CPUID flags") {
			break
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(f[0], ":") {
			continue
		}
		names = append(names, f[0])
		if len(f) > 1 {
			names = append(names, f[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// parseMachineHelp takes the machine names from `-machine help`: the first
// word of each line after "Supported machines are:".
func parseMachineHelp(out string) []string {
	var names []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(line, ":\n") || strings.HasSuffix(strings.TrimSpace(line), ":") {
			continue
		}
		names = append(names, f[0])
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ModelName is the model or machine name of a -cpu or -machine value:
// what comes before the first comma ("qemu64,+sse4.2" gives "qemu64").
func ModelName(v string) string {
	name, _, _ := strings.Cut(v, ",")
	return name
}

// Resolve returns the path of the QEMU binary spec runs, looked up in PATH
// as Start does.
func (s Spec) Resolve() (string, error) {
	name, err := s.BinaryName()
	if err != nil {
		return "", err
	}
	return exec.LookPath(name)
}
