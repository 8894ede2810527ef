package scenario

import (
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var archRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// archDefaults are the machine and CPU used when a guest of that arch sets
// none. Other arches must set both. The firmware is QEMU's own for each
// (SeaBIOS, none on aarch64 virt with -kernel, OpenSBI on riscv64 virt,
// s390-ccw.img, which -kernel bypasses); bios: none turns it off.
var archDefaults = map[string][2]string{
	"x86_64":  {DefaultMachine, DefaultCPU},
	"i386":    {DefaultMachine, "qemu32"},
	"aarch64": {"virt", "cortex-a57"},
	"riscv64": {"virt", "rv64"},
	"s390x":   {"s390-ccw-virtio", "qemu"},
}

// archAliases are other spellings of the architectures (Go's, Debian's,
// the kernel's), which QEMU does not know: arch names QEMU's binary.
var archAliases = map[string]string{
	"arm64": "aarch64", "amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64",
	"riscv": "riscv64", "rv64": "riscv64", "s390": "s390x", "i686": "i386", "x86": "i386",
}

// NoFirmware says how bios: none (BIOSNone) starts a guest of arch: the
// -bios argument to give QEMU ("none" where QEMU knows that spelling, as on
// riscv64; "" where the machine has no firmware with -kernel anyway, as
// aarch64 virt, whose QEMU takes "none" for a ROM file name), or ok false
// with why not, where the machine cannot start without its firmware.
// Architectures lockstep has no defaults for get "none": QEMU decides.
func NoFirmware(arch string) (arg string, ok bool, why string) {
	switch arch {
	case "aarch64":
		return "", true, ""
	case "x86_64", "i386":
		return "", false, "QEMU's x86 machines cannot start without firmware (QEMU: could not load PC BIOS 'none'); leave bios out: SeaBIOS boots the -kernel"
	case "s390x":
		return "", false, "s390-ccw-virtio cannot start without s390-ccw.img (QEMU: could not find stage1 bootloader); leave bios out: -kernel bypasses it"
	}
	return BIOSNone, true, ""
}

func (b *builder) decodeGuests(p string, v *yaml.Node) {
	d := b.d
	b.guests = map[string]guestRaw{}
	b.guestsNode = v
	one := func(p string, _, v *yaml.Node) {
		b.guests[p[strings.LastIndexByte(p, '.')+1:]] = b.decodeGuest(p, v)
	}
	before := len(d.errs.errs)
	b.guestsKeys = d.mapping(p, v, map[string]fieldFunc{"defaults": one, "a": one, "b": one})
	b.guestsBad = len(d.errs.errs) > before
}

// decodeGuest records the fields a guest mapping sets.
func (b *builder) decodeGuest(p string, v *yaml.Node) guestRaw {
	d := b.d
	g := guestRaw{fields: map[string]setting{}, pos: d.at(v)}
	set := func(name string, val any, n *yaml.Node) { g.fields[name] = setting{val, d.at(n)} }
	str := func(valid func(string) string) fieldFunc {
		return func(p string, _, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok {
				return
			}
			if valid != nil {
				if msg := valid(s); msg != "" {
					d.errorf(v, "%s: %s", p, msg)
					return
				}
			}
			set(p[strings.LastIndexByte(p, '.')+1:], s, v)
		}
	}
	nonEmpty := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "must not be empty"
		}
		return ""
	}
	d.mapping(p, v, map[string]fieldFunc{
		"label": str(func(s string) string {
			if strings.TrimSpace(s) == "" {
				return "must not be empty"
			}
			if strings.ContainsAny(s, "\n\r") {
				return "must be one line"
			}
			return ""
		}),
		"arch": str(func(s string) string {
			if !archRE.MatchString(s) {
				return "bad arch " + quote(s) + " (e.g. x86_64, aarch64)"
			}
			return ""
		}),
		"qemu":    str(nonEmpty),
		"machine": str(nonEmpty),
		"cpu":     str(nonEmpty),
		"accel": str(func(s string) string {
			if s != AccelTCG && s != AccelKVM {
				return quote(s) + " is not one of tcg, kvm"
			}
			return ""
		}),
		"memory": str(func(s string) string {
			if !memoryRE.MatchString(s) || strings.Trim(s, "0kKmMgGtT") == "" {
				return "bad memory size " + quote(s) + " (e.g. 64M, 1G)"
			}
			return ""
		}),
		"smp": func(p string, _, v *yaml.Node) {
			if n, ok := d.int(p, v, 1, 1024); ok {
				set("smp", n, v)
			}
		},
		"kernel":  str(nil),
		"initrd":  str(nil),
		"append":  str(nil),
		"bios":    str(nil),
		"symbols": str(nil),
		"args": func(p string, _, v *yaml.Node) {
			if l, ok := d.strList(p, v, nil); ok {
				set("args", l, v)
			}
		},
		"source_strip": func(p string, _, v *yaml.Node) {
			if l, ok := d.strList(p, v, validSourcePrefix); ok {
				set("source_strip", l, v)
			}
		},
		"attach": func(p string, _, v *yaml.Node) {
			if a, ok := b.decodeAttach(p, v); ok {
				set("attach", a, v)
			}
		},
		"drives": func(p string, _, v *yaml.Node) {
			items, ok := d.sequence(p, v)
			if !ok {
				return
			}
			l := make([]Drive, 0, len(items))
			for i, it := range items {
				if dr, ok := b.decodeDrive(index(p, i), it); ok {
					l = append(l, dr)
				}
			}
			set("drives", l, v)
		},
	})
	return g
}

// decodeAttach decodes guests.<side>.attach: {qmp: PATH, on_exit: ...}.
func (b *builder) decodeAttach(p string, v *yaml.Node) (*Attach, bool) {
	d := b.d
	a := &Attach{Pos: d.at(v)}
	n := len(d.errs.errs)
	keys := d.mapping(p, v, map[string]fieldFunc{
		"qmp": func(p string, _, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok {
				return
			}
			if msg := validQMPAddress(s); msg != "" {
				d.errorf(v, "%s: %s", p, msg)
				return
			}
			a.QMP = s
		},
		"on_exit": func(p string, _, v *yaml.Node) {
			a.OnExit, _ = d.oneOf(p, v, OnExitResume, OnExitPause)
		},
	})
	if len(d.errs.errs) > n || keys == nil {
		return nil, false
	}
	if a.QMP == "" {
		d.errorf(v, "%s: qmp is required (the QMP socket of the running QEMU)", p)
		return nil, false
	}
	return a, true
}

// validQMPAddress checks attach.qmp: a unix socket path, or tcp:HOST:PORT
// on the loopback.
func validQMPAddress(s string) string {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	rest, ok := strings.CutPrefix(s, "tcp:")
	if !ok {
		if strings.HasPrefix(s, "unix:") {
			return "give the socket path without unix: (" + quote(strings.TrimPrefix(s, "unix:")) + ")"
		}
		return ""
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "bad address " + quote(s) + " (tcp:127.0.0.1:PORT)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "bad port " + quote(port) + " in " + quote(s)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "host " + quote(host) + " is not the loopback: QMP gives full control of the VM, attach only to a local QEMU"
	}
	return ""
}

// launchFields are the guest fields that say how to start QEMU: they mean
// nothing for a side that attaches to a running one.
var launchFields = []string{"qemu", "machine", "cpu", "accel", "memory", "smp", "kernel", "initrd", "append", "bios", "drives", "args"}

func (b *builder) decodeDrive(p string, v *yaml.Node) (Drive, bool) {
	d := b.d
	dr := Drive{Pos: d.at(v)}
	n := len(d.errs.errs)
	word := func(dst *string) fieldFunc {
		return func(p string, _, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				if !formatRE.MatchString(s) {
					d.errorf(v, "%s: bad value %s", p, quote(s))
					return
				}
				*dst = s
			}
		}
	}
	d.mapping(p, v, map[string]fieldFunc{
		"file": func(p string, _, v *yaml.Node) {
			dr.File, _ = d.str(p, v)
		},
		"format": word(&dr.Format),
		"if":     word(&dr.If),
		"snapshot": func(p string, _, v *yaml.Node) {
			dr.Snapshot, _ = d.bool(p, v)
		},
	})
	if len(d.errs.errs) > n {
		return dr, false
	}
	if dr.File == "" {
		d.errorf(v, "%s: file is required", p)
		return dr, false
	}
	return dr, true
}

// mergeGuest builds side i from guests.defaults and guests.<side>.
func (b *builder) mergeGuest(i int) Guest {
	side := SideNames[i]
	def, sg := b.guests["defaults"], b.guests[side]
	fields := map[string]setting{}
	for k, v := range def.fields {
		fields[k] = v
	}
	for k, v := range sg.fields {
		fields[k] = v
	}
	prefix := "guests." + side
	if a, ok := def.fields["attach"]; ok && i == 0 {
		b.d.errs.addf(a.pos, "guests.defaults.attach: not allowed: each side attaches to its own QEMU (set guests.a.attach, guests.b.attach)")
	}
	if _, ok := sg.fields["attach"]; !ok {
		delete(fields, "attach")
	}
	if _, ok := sg.fields["attach"]; ok {
		for _, f := range launchFields {
			if v, set := sg.fields[f]; set {
				b.d.errs.addf(v.pos, "%s.%s: not allowed with attach: the guest is already running (give its ELF as symbols:)", prefix, f)
			}
		}
		// Inherited launch fields are for the other side.
		for _, f := range launchFields {
			delete(fields, f)
		}
	}
	for k, v := range fields {
		b.s.Pos[prefix+"."+k] = v.pos
	}
	str := func(name, dflt string) string {
		if v, ok := fields[name]; ok {
			return v.v.(string)
		}
		return dflt
	}
	g := Guest{Side: side, Pos: sg.pos}
	if !g.Pos.IsValid() {
		g.Pos = b.s.PosOf(prefix)
	}
	g.Label = str("label", side)
	g.Arch = str("arch", DefaultArch)
	ad, known := archDefaults[g.Arch]
	g.QEMU = str("qemu", "qemu-system-"+g.Arch)
	g.Machine = str("machine", ad[0])
	g.CPU = str("cpu", ad[1])
	if qname, ok := archAliases[g.Arch]; ok {
		b.d.errs.addf(fields["arch"].pos, "%s.arch: %q is not what QEMU calls it: use %s (qemu-system-%s)", prefix, g.Arch, qname, qname)
	} else if _, attach := fields["attach"]; !known && !attach {
		for _, f := range []string{"machine", "cpu"} {
			if _, ok := fields[f]; !ok {
				b.d.errs.addf(g.Pos, "%s: %s is required for arch %s", prefix, f, g.Arch)
			}
		}
	}
	g.Accel = str("accel", DefaultAccel)
	g.Memory = str("memory", DefaultMemory)
	g.SMP = DefaultSMP
	if v, ok := fields["smp"]; ok {
		g.SMP = v.v.(int)
	}
	g.Append = str("append", "")
	dir := b.s.Dir
	g.Kernel = resolvePath(dir, str("kernel", ""))
	g.Initrd = resolvePath(dir, str("initrd", ""))
	if bios := str("bios", ""); bios == BIOSNone {
		g.BIOS = BIOSNone
	} else {
		g.BIOS = resolvePath(dir, bios)
	}
	g.Symbols = resolvePath(dir, str("symbols", ""))
	if g.Symbols == "" {
		g.Symbols = g.Kernel
		if p, ok := b.s.Pos[prefix+".kernel"]; ok {
			b.s.Pos[prefix+".symbols"] = p
		}
	}
	if strings.Contains(g.QEMU, "/") {
		g.QEMU = resolvePath(dir, g.QEMU)
	}
	if v, ok := fields["drives"]; ok {
		for _, dr := range v.v.([]Drive) {
			dr.File = resolvePath(dir, dr.File)
			g.Drives = append(g.Drives, dr)
		}
	}
	if v, ok := fields["source_strip"]; ok {
		g.SourceStrip = append([]string{}, v.v.([]string)...)
	}
	if v, ok := fields["args"]; ok {
		g.Args = append([]string{}, v.v.([]string)...)
	} else if g.Arch == "x86_64" || g.Arch == "i386" {
		g.Args = append([]string{}, DefaultX86Args...)
	}
	if v, ok := fields["attach"]; ok {
		a := *v.v.(*Attach)
		if !strings.HasPrefix(a.QMP, "tcp:") {
			a.QMP = resolvePath(dir, a.QMP)
		}
		g.Attach = &a
		g.QEMU, g.Machine, g.CPU, g.Accel, g.Memory, g.SMP = "", "", "", "", "", 0
		g.Args = nil
	}
	return g
}

// validSourcePrefix checks a source_strip entry: a path prefix whose
// elements may be path.Match patterns ("/build/linux-*/").
func validSourcePrefix(s string) string {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	for _, el := range strings.Split(s, "/") {
		if _, err := path.Match(el, ""); err != nil {
			return "bad pattern " + quote(el) + " in " + quote(s) + ": " + err.Error()
		}
	}
	return ""
}

// usesSymbols returns the first symbolic name the scenario needs resolved,
// or "".
func (s *Scenario) usesSymbols() string {
	for _, sp := range s.Sync {
		if sp.Symbol != "" {
			return sp.Symbol
		}
		for _, m := range sp.Compare.Memory {
			if m.Symbol != "" {
				return m.Symbol
			}
		}
	}
	if len(s.Trace.Functions) > 0 {
		return s.Trace.Functions[0]
	}
	for _, in := range s.Inject {
		if in.Func != "" && !in.FuncIsAddr() {
			return in.Func
		}
		if in.Memory != nil && in.Memory.Symbol != "" {
			return in.Memory.Symbol
		}
	}
	for _, m := range s.Noise.Memory {
		if m.Symbol != "" {
			return m.Symbol
		}
	}
	return ""
}
