package compare

// SideState is what one side looked like at a sync point both sides
// reached, whether or not anything differed there: where it stopped, its
// backtrace and the values of the registers the sync point compares.
type SideState struct {
	PC Location `json:"pc"`
	// Registers are the compared registers in compare order (the order
	// the sync point lists them, groups in target.xml order), with whole
	// ignored registers left out.
	Registers []RegisterValue `json:"registers,omitempty"`
	// Backtrace is the side's call path, outermost first, taken whether or
	// not the sync point compares call paths.
	Backtrace []Frame `json:"backtrace,omitempty"`
}

// RegisterValue is one register's value: a full-width hex string, as in
// RegisterDiff.
type RegisterValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// List lists r's registers in r.Names order with their hex values;
// a name without a value is left out.
func (r Regs) List() []RegisterValue {
	out := make([]RegisterValue, 0, len(r.Names))
	for _, n := range r.Names {
		v, ok := r.Values[n]
		if !ok {
			continue
		}
		out = append(out, RegisterValue{Name: n, Value: hexValue(v)})
	}
	return out
}
