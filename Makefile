# imp2 toolkit. `make bench` is the main job, `make test` the test suite;
# both install what they need first (scripts/deps.sh, idempotent).

GO      ?= go
KDIR    ?= $(firstword $(wildcard /usr/src/linux-headers-*-amd64))
CMDS    := $(notdir $(wildcard cmd/*))
BINS    := $(addprefix bin/imp2-,$(CMDS))
GOFLAGS_STATIC := CGO_ENABLED=0

.PHONY: all deps build kmod test vet bench clean $(BINS)

all: build kmod

deps:
	./scripts/deps.sh

build: $(BINS)

$(BINS): bin/imp2-%:
	$(GOFLAGS_STATIC) $(GO) build -trimpath -o $@ ./cmd/$*

kmod:
	$(MAKE) -C kmod KDIR=$(KDIR)

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# The suite boots the VM for the module tests; -count=1 because the Go test
# cache cannot see the C sources those tests build.
test: deps vet kmod
	$(GO) test -count=1 -timeout 20m ./...

# The main job: the default sweep with the real module in the VM, written
# to results/default (plots in results/default/plots).
bench: deps build kmod
	bin/imp2-bench run -vm -source kmod -out results/default

clean:
	rm -rf bin
	$(MAKE) -C kmod KDIR=$(KDIR) clean
