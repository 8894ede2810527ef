package scenario

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
)

// TemplateOptions describe a starter scenario for two kernels.
type TemplateOptions struct {
	Name    string
	Kernel  [2]string // kernel images of sides a and b
	Symbols [2]string // ELF with symbols per side ("" = the kernel)
	Initrd  string
	Append  string
	Accel   [2]string // "" = tcg
	CPU     [2]string // "" = qemu64
	Memory  string
	Sync    []string // break expressions; empty gives start_kernel
	Expect  Expect   // "" = identical
	Linux   bool     // Linux defaults: nokaslr console, do_one_initcall tracing
}

var starter = template.Must(template.New("scenario").Funcs(template.FuncMap{"q": yamlQuote}).Parse(
	`# Written by lockstep init; every field is documented in docs/scenario.md.
# Check it with: lockstep validate FILE
name: {{q .Name}}
description: {{q .Description}}
timeout: 120s
guests:
  defaults:
    arch: x86_64
    machine: pc
    memory: {{q .Memory}}
{{- if .Initrd}}
    initrd: {{q .Initrd}}
{{- end}}
{{- if .Append}}
    append: {{q .Append}}
{{- end}}
{{- if .Linux}}
    args: [-no-reboot]
{{- end}}
{{- range $i, $s := .Sides}}
  {{$s.Key}}:
    label: {{q $s.Label}}
    kernel: {{q $s.Kernel}}
{{- if $s.Symbols}}
    symbols: {{q $s.Symbols}}
{{- end}}
    cpu: {{q $s.CPU}}
    accel: {{q $s.Accel}}
{{- end}}
determinism:
  sstep: [noirq, notimer]     # applied where the accelerator supports them
compare:
  registers: [general]        # between builds: what the calling convention makes meaningful
  ignore: [eflags.RF]
  callpath: backtrace         # frame pointers, or a stack scan on ORC kernels
sync:
{{- range .Sync}}
  - break: {{q .}}
    timeout: 60s
{{- end}}
{{- if .Linux}}
trace:
  functions: [do_one_initcall]  # each initcall, with its argument
{{- end}}
localize:
  enabled: true
expect: {{.Expect}}
`))

type templateSide struct {
	Key, Label, Kernel, Symbols, CPU, Accel string
}

// Template returns a starter scenario, as YAML with comments, for two
// kernels. It is written to be edited: the sync points are a beginning.
func Template(o TemplateOptions) ([]byte, error) {
	for i, k := range o.Kernel {
		if k == "" {
			return nil, fmt.Errorf("template: guest %s needs a kernel", SideNames[i])
		}
	}
	if o.Name == "" {
		o.Name = "lockstep"
	}
	if o.Memory == "" {
		o.Memory = DefaultMemory
		if o.Linux {
			o.Memory = "512M"
		}
	}
	if o.Append == "" && o.Linux {
		o.Append = "console=ttyS0 nokaslr panic=-1"
	}
	if len(o.Sync) == 0 {
		o.Sync = []string{"start_kernel"}
	}
	if o.Expect == "" {
		o.Expect = ExpectIdentical
	}
	data := struct {
		TemplateOptions
		Description string
		Sides       []templateSide
	}{TemplateOptions: o}
	var labels [2]string
	for i := range 2 {
		labels[i] = strings.TrimSuffix(filepath.Base(o.Kernel[i]), filepath.Ext(o.Kernel[i]))
	}
	if labels[0] == labels[1] {
		// Same file name (vmlinuz, bzImage): the directories tell them apart.
		labels = [2]string{filepath.Base(filepath.Dir(o.Kernel[0])), filepath.Base(filepath.Dir(o.Kernel[1]))}
	}
	if labels[0] == labels[1] {
		labels = [2]string{"a", "b"}
	}
	for i := range 2 {
		s := templateSide{Key: SideNames[i], Label: labels[i], Kernel: o.Kernel[i], Symbols: o.Symbols[i],
			CPU: o.CPU[i], Accel: o.Accel[i]}
		if s.Symbols == s.Kernel {
			s.Symbols = ""
		}
		if s.CPU == "" {
			s.CPU = DefaultCPU
		}
		if s.Accel == "" {
			s.Accel = AccelTCG
		}
		data.Sides = append(data.Sides, s)
	}
	data.Description = labels[0] + " vs " + labels[1]
	var b bytes.Buffer
	if err := starter.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return b.Bytes(), nil
}

// yamlQuote quotes s as a YAML double-quoted scalar, with $ doubled so
// that environment expansion leaves it alone.
func yamlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "$", "$$")
	return `"` + r.Replace(s) + `"`
}
