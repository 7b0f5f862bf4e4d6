# imp2 toolkit. `make bench` is the main job, `make test` the test suite;
# both install what they need first (scripts/deps.sh, idempotent).

GO      ?= go
# scripts/deps.sh finds Go in /usr/local/go too, but only for itself:
# every recipe's shell needs it on PATH.
export PATH := $(PATH):/usr/local/go/bin
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

# CI regression gate (README, "The CI gate"): this checkout's module
# and consumer against the base revision's (the merge-base of HEAD with
# main, or GATE_BASE=<rev>), built here and measured interleaved in one VM
# boot on their CPU cost per event, then the exact counts against
# results/ci-baseline/exact.json for the VM's kernel release (a release
# without an entry gets one written: commit it). About 30 s.
# GATE_FLAGS=-module-only for a base that predates the gate's consumer.
# `make baseline` rewrites this kernel's entry on purpose (commit it).
GATE_DIR := results/ci-baseline

gate: bin/imp2-bench
	bin/imp2-bench gate -baseline $(GATE_DIR) $(if $(GATE_BASE),-base $(GATE_BASE)) $(GATE_FLAGS)

baseline: deps bin/imp2-bench
	bin/imp2-bench gate -baseline $(GATE_DIR) -rebaseline $(if $(GATE_BASE),-base $(GATE_BASE))

# The main job: the default sweep with the real module in the VM, written
# to results/default (plots in results/default/plots).
bench: deps build kmod
	bin/imp2-bench run -vm -source kmod -force -out results/default

clean:
	rm -rf bin
	$(MAKE) -C kmod clean
