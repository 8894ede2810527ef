# lockstep — see README.md.
GO      ?= go
BIN     := bin/lockstep
GUESTS  := testdata/guests
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build guests deps test unit integration bench demo fuzz e2e-linux e2e-linux-replay e2e-replay qemu10 clean

all: build guests

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lockstep

guests:
	$(MAKE) -C $(GUESTS)

# deps checks for QEMU and gdb; as root it installs them with apt-get,
# otherwise it names the packages to install.
deps:
	@.ci/deps

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

test: deps guests vet
	$(GO) test -count=1 -timeout 20m ./...

bench: deps guests
	LOCKSTEP_REPLAY_DEEP=1 $(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m ./... | tee bench.out

# fuzz runs every fuzz target for FUZZTIME. Go's fuzzer sometimes ends a
# clean run with "context deadline exceeded" (the deadline hits while it
# minimises a new input, no failing input written); such a run is retried
# once. A real failure writes its input under testdata/fuzz and fails.
FUZZTIME ?= 20s
fuzz:
	@for p in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$p $$f"; \
	    for try in 1 2; do \
	      out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p 2>&1) && { echo "$$out" | tail -1; break; }; \
	      if [ $$try = 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
	        echo "   (fuzzer deadline flake, retrying)"; continue; fi; \
	      echo "$$out"; exit 1; \
	    done; \
	  done; done

# demo runs the demo scenario: x86_64 by default, `make demo ARCH=aarch64`
# (riscv64, s390x) the same planted differences on that architecture's
# guests (testdata/guests/<arch>/, built when its cross compiler is there).
DEMO_ARCH := $(or $(ARCH),x86_64)
DEMO      := testdata/scenarios/$(if $(filter x86_64,$(DEMO_ARCH)),demo.yaml,$(DEMO_ARCH)-demo.yaml)
demo: deps build guests
	@test -f $(DEMO) || { echo "no demo for ARCH=$(DEMO_ARCH) (x86_64, aarch64, riscv64, s390x)" >&2; exit 2; }
	@test "$(DEMO_ARCH)" = x86_64 || test -f $(GUESTS)/build/$(DEMO_ARCH)/demo-good.elf || { \
		echo "the $(DEMO_ARCH) guests are not built: apt-get install gcc-$(DEMO_ARCH)-linux-gnu" >&2; exit 2; }
	./$(BIN) run $(DEMO)

# e2e-replay is opt-in: replay bisection 10^9 instructions deep (deep-1e9),
# the test and the benchmark (minutes on a loaded machine).
e2e-replay: deps guests
	LOCKSTEP_REPLAY_DEEP=1 $(GO) test -p 1 -count=1 -timeout 60m -run 'TestReplayLocalizeDeep$$' -v ./lockstep/
	LOCKSTEP_REPLAY_DEEP=1 $(GO) test -run '^$$' -bench 'BenchmarkLocalize/N=1e9' -benchtime 1x -timeout 60m ./lockstep/

# e2e-linux is opt-in: it downloads two Debian cloud kernels with their -dbg
# vmlinux (~600 MB, cached in ~/.cache/lockstep/linux) and runs them under TCG.
e2e-linux: deps
	E2E_GO_TEST=1 testdata/linux/e2e.sh

# e2e-linux-replay is opt-in: one cached Debian kernel, qemu64 against
# qemu64,+ssse3, localised by replay bisection (docs/linux.md; about a minute).
e2e-linux-replay: deps
	$(GO) test -tags e2e_linux -p 1 -count=1 -timeout 20m -run 'TestLinuxReplay$$' -v ./lockstep/

# qemu10 is opt-in: it unpacks QEMU 10.0 from Debian bookworm-backports
# (about 15 MB of .debs) into ~/.cache/lockstep/qemu10 (QEMU10_DIR) without installing it,
# with a wrapper qemu-system-x86_64-10 (its own modules and firmware); the
# QEMU 7.2-against-10.0 tests run when it is there. docs/qemu-versions.md.
QEMU10_DIR ?= $(HOME)/.cache/lockstep/qemu10
qemu10:
	testdata/qemu10/fetch.sh $(QEMU10_DIR)

clean:
	rm -rf bin bench.out
	$(MAKE) -C $(GUESTS) clean
