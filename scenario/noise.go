package scenario

import (
	"go.yaml.in/yaml/v3"
)

// decodeNoise decodes a noise mapping.
func decodeNoise(d *decoder, p string, v *yaml.Node) Noise {
	var n Noise
	d.mapping(p, v, map[string]fieldFunc{
		"registers": func(p string, _, v *yaml.Node) {
			n.Registers, _ = d.strList(p, v, validRegBit)
		},
		"callpath": func(p string, _, v *yaml.Node) {
			n.CallPath, _ = d.strList(p, v, validFunction)
		},
		"memory": func(p string, _, v *yaml.Node) {
			items, ok := d.sequence(p, v)
			if !ok {
				return
			}
			for i, it := range items {
				if m, ok := decodeNoiseMemory(d, index(p, i), it); ok {
					n.Memory = append(n.Memory, m)
				}
			}
		},
	})
	return n
}

func decodeNoiseMemory(d *decoder, p string, v *yaml.Node) (NoiseMemory, bool) {
	m := NoiseMemory{Pos: d.at(v)}
	before := len(d.errs.errs)
	d.mapping(p, v, map[string]fieldFunc{
		"symbol": func(p string, _, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				if !isSymbol(s) {
					d.errorf(v, "%s: %s is not a symbol name", p, quote(s))
					return
				}
				m.Symbol = s
			}
		},
		"address": func(p string, _, v *yaml.Node) {
			m.Address, m.HasAddress = d.uint(p, v)
		},
		"offsets": func(p string, _, v *yaml.Node) {
			items, ok := d.sequence(p, v)
			if !ok {
				return
			}
			if len(items) == 0 {
				d.errorf(v, "%s: empty list: omit offsets to mark the whole symbol", p)
				return
			}
			m.Offsets = make([]uint64, 0, len(items))
			for i, it := range items {
				if o, ok := d.uint(index(p, i), it); ok {
					m.Offsets = append(m.Offsets, o)
				}
			}
		},
	})
	if len(d.errs.errs) > before {
		return m, false
	}
	switch {
	case m.Symbol != "" && m.HasAddress:
		d.errorf(v, "%s: symbol and address are mutually exclusive", p)
		return m, false
	case m.Symbol == "" && !m.HasAddress:
		d.errorf(v, "%s: needs a symbol or an address", p)
		return m, false
	}
	return m, true
}
