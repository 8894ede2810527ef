package scenario

import (
	"strings"
	"testing"
)

// TestFlowVarHint checks that an unquoted ${VAR} in a flow mapping, which
// YAML reports only as "did not find expected ',' or '}'", gets a hint to
// quote it, and that a quoted one parses.
func TestFlowVarHint(t *testing.T) {
	t.Parallel()
	doc := "name: t\nguests:\n  defaults: {kernel: k.elf}\n  a: {}\n  b: {kernel: ${K}/x.elf, cpu: qemu64}\nsync:\n  - break: main\n"
	env := func(k string) (string, bool) { return "/k", k == "K" }
	_, err := parse("t.yaml", []byte(doc), env)
	if err == nil {
		t.Fatal("parse accepted an unquoted ${K} in a flow mapping")
	}
	for _, w := range []string{"did not find expected", `line 5: ${K} inside { } or [ ] must be quoted, e.g. "${K}"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	quoted := strings.Replace(doc, "${K}/x.elf", `"${K}/x.elf"`, 1)
	if _, err := parse("t.yaml", []byte(quoted), env); err != nil {
		t.Fatalf("quoted: %v", err)
	}
	// A syntax error elsewhere gets no hint.
	other := "name: t\nguests: {a: {label: one}\n  b: [\n"
	if _, err := parse("t.yaml", []byte(other), env); err == nil || strings.Contains(err.Error(), "quoted") {
		t.Errorf("unrelated syntax error: %v", err)
	}
}

func TestUnquotedVar(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"  b: {kernel: ${K}/x.elf}", "${K}"},
		{`  b: {kernel: "${K}/x.elf"}`, ""},
		{`  b: {kernel: '${K}', x: ${Y}}`, "${Y}"},
		{"  b: {} # ${K}", ""},
	}
	for _, tt := range tests {
		if got, _ := unquotedVar(tt.line); got != tt.want {
			t.Errorf("unquotedVar(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}
