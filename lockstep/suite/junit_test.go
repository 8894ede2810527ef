package suite

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// junitSchema is the bundled Jenkins xunit JUnit schema.
const junitSchema = "../../testdata/junit/jenkins-junit.xsd"

// validateJUnit checks files against the Jenkins xunit JUnit schema with
// xmllint, skipping when xmllint is missing (apt-get install
// libxml2-utils; .ci/run installs it).
func validateJUnit(t *testing.T, files ...string) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not found (apt-get install libxml2-utils): the JUnit files are not validated against the Jenkins xunit schema")
	}
	for _, f := range files {
		out, err := exec.Command(xmllint, append([]string{"--noout", "--schema", junitSchema}, f)...).CombinedOutput()
		if err != nil {
			t.Errorf("%s does not validate against the Jenkins xunit JUnit schema: %v\n%s", f, err, out)
		}
	}
}

// TestJUnitSchema validates every scenario's own JUnit report (passed,
// failed, a 64 KiB memory divergence, infrastructure) and the merged
// JUnit of two shards, one of them lost (missing scenarios), against
// the Jenkins xunit JUnit schema; and checks that the schema rejects a
// document that breaks it, so that a pass means something.
func TestJUnitSchema(t *testing.T) {
	t.Parallel()
	p := fakePlan("ok-a", "fail-b", "big-c", "infra-d", "ok-e", "fail-f", "ok-g")
	dirs := runShards(t, p, 2, allFormats)
	var files []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "*.xml"))
		files = append(files, m...)
	}
	if len(files) < 6 {
		t.Fatalf("%d scenario JUnit files, want one per scenario with a result", len(files))
	}
	out := t.TempDir()
	if _, err := Merge(dirs, out); err != nil {
		t.Fatal(err)
	}
	lost := t.TempDir()
	m, err := Merge(dirs[:1], lost)
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts[StatusMissing] == 0 {
		t.Fatalf("merge of one shard of two: counts %v", m.Counts)
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(bad, []byte(`<testsuites><testsuite name="x" tests="1" time="1.2.3"><testcase/></testsuite></testsuites>`), 0o644); err != nil {
		t.Fatal(err)
	}
	validateJUnit(t, append(files, filepath.Join(out, MergedJUnit), filepath.Join(lost, MergedJUnit))...)
	if out, err := exec.Command("xmllint", "--noout", "--schema", junitSchema, bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "failures") {
		t.Errorf("the schema accepts a testsuite without failures/errors and a bad time:\n%s", out)
	}
}
