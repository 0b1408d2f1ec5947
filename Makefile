.PHONY: test build run servers servers-stop bench fuzz

# Extra go test flags: make test TESTFLAGS="-run TestS3 -v"
TESTFLAGS ?=

# The shipped binary leaves out the GCS client's gRPC direct-path modules (xDS,
# RLS), which the collector never uses (it talks to GCS over HTTP): a smaller
# binary and less resident memory (figures in the README).
GOTAGS ?= disable_grpc_modules

# The version `collector version` prints, and the binary's path. The
# Dockerfile's build runs the same commands, go generate and go build (deploy/
# tests that the go builds agree); it gets VERSION as a build argument.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN ?= collector

test:
	bash scripts/test.sh $(TESTFLAGS)

# The binary is static (CGO_ENABLED=0, so Go's own linker, no libc): the
# wrapper forms copy it into the job's image, whatever its libc (an old glibc,
# musl) or none (distroless/static). NVML is a C library, which a static
# process cannot load: the nvml_helper tag embeds the NVML helper, a small
# executable that go generate builds (resources/nvml) and the collector runs,
# from memory, where libnvidia-ml is mounted.
build:
	go generate ./resources/nvml
	CGO_ENABLED=0 go build -tags $(GOTAGS),nvml_helper -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/collector

run:
	go run -tags $(GOTAGS) ./cmd/collector --sync-interval 60

servers:
	bash scripts/servers.sh start

servers-stop:
	bash scripts/servers.sh stop

bench:
	bash bench/run.sh

# Every fuzz target for FUZZTIME each, then the file source's model test with
# more seeds (scripts/fuzz.sh); a crasher fails it and stays in testdata/fuzz/.
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh
