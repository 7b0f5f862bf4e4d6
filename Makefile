# imp2 toolkit. `make bench` is the main job, `make test` the test suite;
# both install what they need first (scripts/deps.sh, idempotent).

GO      ?= go
CMDS    := $(notdir $(wildcard cmd/*))
BINS    := $(addprefix bin/imp2-,$(CMDS))
GOFLAGS_STATIC := CGO_ENABLED=0

.PHONY: all deps build kmod test vet bench gate baseline clean $(BINS)

all: build kmod

deps:
	./scripts/deps.sh

build: $(BINS)

# -buildvcs=auto stamps the git revision for -version even where GOFLAGS says -buildvcs=false.
$(BINS): bin/imp2-%:
	$(GOFLAGS_STATIC) $(GO) build -trimpath -buildvcs=auto -o $@ ./cmd/$*

# kmod/Makefile picks KDIR (kbuild convention, see there); `make kmod
# KDIR=...` reaches it through the command line.
kmod:
	$(MAKE) -C kmod

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# The suite boots the VM for the module tests; -count=1 because the Go test
# cache cannot see the C sources those tests build. Every package but the
# module's on the default kernel, then the module suite on each kernel of
# the matrix (internal/vm/matrix.go; fetched into the cache on first use):
# IMP2_KERNELS only for that package, since internal/vm's own boot test
# reads it too and would boot the matrix a second time.
# Then the regression gate, so that CI (.ci/run) runs it too.
KMODTEST := ./internal/kmodtest

test: deps vet kmod
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -vx '$(shell $(GO) list $(KMODTEST))')
	IMP2_KERNELS=all $(GO) test -count=1 -timeout 30m $(KMODTEST)
	$(MAKE) --no-print-directory gate

# CI regression gate: GATE_SWEEP with the real module in the VM (about a
# minute), compared with the baseline committed in results/ci-baseline
# under the thresholds in its compare.json; fails on a regression and
# prints the comparison table. The sweep is read back from the baseline,
# so the two cannot drift apart. `make baseline` refreshes the baseline on
# purpose (commit results/ci-baseline/results.json afterwards).
GATE_SWEEP := -vm -source kmod -rates 500 -rcvbufs 16K,212992 -delays 0 -duration 400ms -reps 8
GATE_DIR   := results/ci-baseline

gate: bin/imp2-bench kmod
	bin/imp2-bench gate -baseline $(GATE_DIR)

baseline: deps bin/imp2-bench kmod
	bin/imp2-bench run $(GATE_SWEEP) -plot=false -overhead=false -trace-frames 0 -out $(GATE_DIR)

# The main job: the default sweep with the real module in the VM, written
# to results/default (plots in results/default/plots).
bench: deps build kmod
	bin/imp2-bench run -vm -source kmod -out results/default

clean:
	rm -rf bin
	$(MAKE) -C kmod clean
