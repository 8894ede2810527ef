package suite

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// ciFile reads a file of docs/ci and checks that docs/ci.md shows it
// verbatim in the yaml (or dockerfile) block after marker.
func ciFile(t *testing.T, name, marker, lang string) string {
	t.Helper()
	data, err := os.ReadFile("../../docs/ci/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if docFence(t, marker, lang) != string(data) {
		t.Errorf("docs/ci.md's block after %q is not docs/ci/%s verbatim", marker, name)
	}
	return string(data)
}

// decodeStrict decodes YAML documents into outs, rejecting unknown keys
// (a misspelt key would be silently ignored by the CI engine).
func decodeStrict(t *testing.T, name, data string, outs ...any) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(data))
	dec.KnownFields(true)
	for i, out := range outs {
		if err := dec.Decode(out); err != nil {
			t.Fatalf("%s: document %d: %v", name, i+1, err)
		}
	}
}

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// checkShards checks that the environments a CI engine gives its n
// runners make ShardFromEnv pick shards 1..n of n, each once.
func checkShards(t *testing.T, engine string, envs []map[string]string) {
	t.Helper()
	var got []string
	for _, e := range envs {
		s, ok, err := ShardFromEnv(envOf(e), 0)
		if err != nil || !ok {
			t.Fatalf("%s: environment %v: shard %v ok %v err %v", engine, e, s, ok, err)
		}
		got = append(got, s.String())
	}
	var want []string
	for i := 1; i <= len(envs); i++ {
		want = append(want, fmt.Sprintf("%d/%d", i, len(envs)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: the runners' environments select shards %v, want %v", engine, got, want)
	}
}

// outDirs expands a shard output directory pattern with a variable for
// the indexes from..from+n-1.
func outDirs(pattern, variable string, from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, strings.ReplaceAll(pattern, variable, fmt.Sprint(i)))
	}
	return out
}

// TestCIGitHubFile: the workflow file is the one docs/ci.md shows (and
// TestDocsWorkflow checks).
func TestCIGitHubFile(t *testing.T) {
	t.Parallel()
	ciFile(t, "github-workflow.yml", "<!-- suite-workflow", "yaml")
}

// TestCIGitLab parses the GitLab job and checks that parallel: N, the
// environment GitLab gives each of the N jobs, the shard directories
// and the merge's arguments agree, and that JUnit is published.
func TestCIGitLab(t *testing.T) {
	t.Parallel()
	data := ciFile(t, "gitlab-ci.yml", "<!-- gitlab-ci", "yaml")
	type job struct {
		Stage        string   `yaml:"stage"`
		Image        string   `yaml:"image"`
		Parallel     int      `yaml:"parallel"`
		Needs        []string `yaml:"needs"`
		When         string   `yaml:"when"`
		BeforeScript []string `yaml:"before_script"`
		Script       []string `yaml:"script"`
		Artifacts    struct {
			When    string            `yaml:"when"`
			Paths   []string          `yaml:"paths"`
			Reports map[string]string `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	var doc struct {
		Stages []string `yaml:"stages"`
		Shard  job      `yaml:"lockstep"`
		Merge  job      `yaml:"lockstep-merge"`
	}
	decodeStrict(t, "gitlab-ci.yml", data, &doc)
	n := doc.Shard.Parallel
	if n < 2 {
		t.Fatalf("parallel: %d, want a shard count", n)
	}
	script := strings.Join(append(doc.Shard.BeforeScript, doc.Shard.Script...), "\n")
	m := regexp.MustCompile(`lockstep suite (.*)-o (\S+)`).FindStringSubmatch(script)
	if m == nil || strings.Contains(m[1], "--shard") || !strings.Contains(m[2], "$CI_NODE_INDEX") {
		t.Fatalf("the job must run lockstep suite -o DIR-$CI_NODE_INDEX and take its shard from CI_NODE_INDEX/CI_NODE_TOTAL: %q", script)
	}
	if !strings.Contains(script, qemu.DebianPackage("x86_64")) {
		t.Errorf("the job does not install %s", qemu.DebianPackage("x86_64"))
	}
	var envs []map[string]string
	for i := 1; i <= n; i++ { // what GitLab sets for parallel: n
		envs = append(envs, map[string]string{"CI_NODE_INDEX": fmt.Sprint(i), "CI_NODE_TOTAL": fmt.Sprint(n)})
	}
	checkShards(t, "GitLab", envs)
	if doc.Shard.Artifacts.When != "always" || !slices.ContainsFunc(doc.Shard.Artifacts.Paths, func(p string) bool { return strings.HasPrefix(m[2], strings.TrimSuffix(p, "/")) }) {
		t.Errorf("the shards' artifacts %+v do not always keep %s", doc.Shard.Artifacts, m[2])
	}
	if !slices.Contains(doc.Merge.Needs, "lockstep") || doc.Merge.When != "always" {
		t.Errorf("merge job: needs %v when %q: it must run after every shard, even failed ones", doc.Merge.Needs, doc.Merge.When)
	}
	mm := regexp.MustCompile(`lockstep merge -o (\S+) (.*)`).FindStringSubmatch(strings.Join(doc.Merge.Script, "\n"))
	if mm == nil {
		t.Fatal("the merge job does not run lockstep merge")
	}
	if got, want := strings.Fields(mm[2]), outDirs(m[2], "$CI_NODE_INDEX", 1, n); !slices.Equal(got, want) {
		t.Errorf("merge of %v, want %v (one directory per parallel job)", got, want)
	}
	if doc.Merge.Artifacts.Reports["junit"] != mm[1]+"/"+MergedJUnit || doc.Merge.Artifacts.When != "always" {
		t.Errorf("merge job: JUnit report %q, want %s/%s, always", doc.Merge.Artifacts.Reports["junit"], mm[1], MergedJUnit)
	}
	if !slices.Contains(doc.Stages, doc.Shard.Stage) || slices.Index(doc.Stages, doc.Merge.Stage) <= slices.Index(doc.Stages, doc.Shard.Stage) {
		t.Errorf("stages %v: shard %q, merge %q", doc.Stages, doc.Shard.Stage, doc.Merge.Stage)
	}
}

// k8sObject is what every Kubernetes object has.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
}

// k8sJob is the part of a batch/v1 Job the manifests use.
type k8sJob struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          int    `yaml:"completions"`
		Parallelism          int    `yaml:"parallelism"`
		BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
		Template             struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Name    string   `yaml:"name"`
					Image   string   `yaml:"image"`
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Env     []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
					} `yaml:"resources"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name                  string `yaml:"name"`
					PersistentVolumeClaim struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// TestCIKubernetes parses the Indexed Job, its volume claim and the
// merge Job, and checks completions == parallelism == the shard total
// lockstep is given, that the indexes the Job controller sets select
// every shard once, that the merge reads every shard's directory on the
// same claim, and that both run the image the Dockerfile section builds.
func TestCIKubernetes(t *testing.T) {
	t.Parallel()
	var pvc struct {
		k8sObject `yaml:",inline"`
		Spec      struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	}
	var job, merge k8sJob
	decodeStrict(t, "k8s-job.yaml", ciFile(t, "k8s-job.yaml", "<!-- k8s-job", "yaml"), &pvc, &job)
	decodeStrict(t, "k8s-merge.yaml", ciFile(t, "k8s-merge.yaml", "<!-- k8s-merge", "yaml"), &merge)
	if pvc.Kind != "PersistentVolumeClaim" || !slices.Contains(pvc.Spec.AccessModes, "ReadWriteMany") {
		t.Errorf("the shards' volume %+v must be a ReadWriteMany claim (pods on several nodes write it)", pvc)
	}
	s := job.Spec
	if job.Kind != "Job" || job.APIVersion != "batch/v1" || s.CompletionMode != "Indexed" {
		t.Fatalf("%s %s completionMode %q: want an Indexed batch/v1 Job", job.APIVersion, job.Kind, s.CompletionMode)
	}
	n := s.Completions
	if n < 2 || s.Parallelism != n {
		t.Errorf("completions %d, parallelism %d: want equal shard counts", n, s.Parallelism)
	}
	if len(s.Template.Spec.Containers) != 1 {
		t.Fatal("want one container")
	}
	c := s.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["LOCKSTEP_SHARD_TOTAL"] != fmt.Sprint(n) {
		t.Errorf("LOCKSTEP_SHARD_TOTAL = %q, want the completions, %d", env["LOCKSTEP_SHARD_TOTAL"], n)
	}
	var envs []map[string]string
	for i := range n { // what the Job controller sets in pod i
		e := map[string]string{"JOB_COMPLETION_INDEX": fmt.Sprint(i)}
		for k, v := range env {
			e[k] = v
		}
		envs = append(envs, e)
	}
	checkShards(t, "Kubernetes", envs)
	cmd := strings.Join(append(c.Command, c.Args...), " ")
	m := regexp.MustCompile(`lockstep suite (.*)-o (\S+)`).FindStringSubmatch(cmd)
	if m == nil || strings.Contains(m[1], "--shard ") || !strings.Contains(m[2], "$JOB_COMPLETION_INDEX") || !slices.Equal(c.Command, []string{"sh", "-c"}) {
		t.Fatalf("the container must run sh -c 'lockstep suite -o DIR-$JOB_COMPLETION_INDEX ...': %q", cmd)
	}
	mount := func(j k8sJob) string {
		cs := j.Spec.Template.Spec.Containers
		if len(cs) != 1 || len(cs[0].VolumeMounts) != 1 || len(j.Spec.Template.Spec.Volumes) != 1 ||
			j.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != pvc.Metadata.Name {
			t.Fatalf("job %s must mount the claim %s once", j.Metadata.Name, pvc.Metadata.Name)
		}
		return cs[0].VolumeMounts[0].MountPath
	}
	if at := mount(job); !strings.HasPrefix(m[2], at+"/") {
		t.Errorf("the shards write %s, outside the volume at %s", m[2], at)
	}
	mc := merge.Spec.Template.Spec.Containers[0]
	if len(mc.Args) < 4 || mc.Args[0] != "merge" || mc.Args[1] != "-o" || !strings.HasPrefix(mc.Args[2], mount(merge)+"/") {
		t.Fatalf("the merge job runs %q, want merge -o DIR-on-the-volume SHARD...", mc.Args)
	}
	if got, want := mc.Args[3:], outDirs(m[2], "$JOB_COMPLETION_INDEX", 0, n); !slices.Equal(got, want) {
		t.Errorf("merge of %v, want %v (one directory per index)", got, want)
	}
	if s.Template.Spec.RestartPolicy != "Never" || merge.Spec.Template.Spec.RestartPolicy != "Never" {
		t.Error("restartPolicy must be Never: a retried pod would rerun its whole shard over its own output")
	}
	image := dockerTag(t)
	if c.Image != image || mc.Image != image {
		t.Errorf("images %q and %q, want %q as docs/ci.md builds it", c.Image, mc.Image, image)
	}
}

// dockerTag returns the tag docs/ci.md's docker build gives the image.
func dockerTag(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`docker build -f docs/ci/Dockerfile -t (\S+) \.`).FindStringSubmatch(string(doc))
	if m == nil {
		t.Fatal("docs/ci.md does not say how to build the image (docker build -f docs/ci/Dockerfile -t TAG .)")
	}
	return m[1]
}

// TestCIDockerfile checks the image definition without docker: a Go
// build stage on the go.mod's Go version that builds lockstep with the
// Makefile and the guests, a Debian stage that installs QEMU from
// Debian, and lockstep as the entry point.
func TestCIDockerfile(t *testing.T) {
	t.Parallel()
	data := ciFile(t, "Dockerfile", "<!-- dockerfile", "dockerfile")
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gover := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	// Join continuation lines, then split into instructions per stage.
	text := strings.ReplaceAll(data, "\\\n", " ")
	var stages [][]string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", l)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], l)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build and run", len(stages))
	}
	build, run := strings.Join(stages[0], "\n"), strings.Join(stages[1], "\n")
	if !strings.HasPrefix(build, "FROM golang:"+gover[1]+"-bookworm AS build") {
		t.Errorf("build stage %q: want FROM golang:%s-bookworm AS build (go.mod's Go, Debian bookworm)", stages[0][0], gover[1])
	}
	for _, want := range []string{"COPY go.mod go.sum", "go mod download", "make build", "make -C testdata/guests"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	if !strings.HasPrefix(run, "FROM debian:bookworm") {
		t.Errorf("run stage %q: want Debian bookworm, whose QEMU the tests use", stages[1][0])
	}
	install := regexp.MustCompile(`apt-get install -y (?:--no-install-recommends )?([a-z0-9 .+-]+)`).FindStringSubmatch(run)
	if install == nil {
		t.Fatal("the run stage installs nothing with apt-get")
	}
	pkgs := strings.Fields(install[1])
	for _, want := range []string{qemu.DebianPackage("x86_64"), "qemu-utils"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("the run stage installs %v, not %s", pkgs, want)
		}
	}
	// The binary the Makefile builds is the one copied onto PATH, and
	// the guests the suite names come along.
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	bin := regexp.MustCompile(`(?m)^BIN\s*:=\s*(\S+)`).FindStringSubmatch(string(mk))
	if bin == nil || !strings.Contains(run, "COPY --from=build /src/"+bin[1]+" /usr/local/bin/lockstep") {
		t.Errorf("the run stage does not copy the Makefile's %v to /usr/local/bin/lockstep", bin)
	}
	if !strings.Contains(run, "COPY --from=build /src/testdata /src/testdata") || !strings.Contains(run, "WORKDIR /src") {
		t.Error("the run stage lacks the guests and scenarios (/src/testdata) or the working directory the scenarios are relative to")
	}
	if !strings.Contains(run, `ENTRYPOINT ["lockstep"]`) {
		t.Error(`the entry point is not ["lockstep"] (k8s-merge.yaml passes merge as args)`)
	}
}
