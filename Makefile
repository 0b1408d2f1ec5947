.PHONY: test build run servers servers-stop bench

# Extra go test flags: make test TESTFLAGS="-run TestS3 -v"
TESTFLAGS ?=

# The shipped binary leaves out the GCS client's gRPC direct-path modules (xDS,
# RLS), which the collector never uses (it talks to GCS over HTTP): a smaller
# binary and less resident memory (figures in the README).
GOTAGS ?= disable_grpc_modules

# The version `collector version` prints, and the binary's path. The
# Dockerfile's build runs the same go build command (deploy/ tests that they
# agree); it gets VERSION as a build argument.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# -linkmode=internal: Go's own linker, also for the cgo of NVML (which only
# dlopens libnvidia-ml at run time). gcc's external link lays the binary out
# so that about 10 MiB more of it stays resident: an idle sidecar holds 35
# MiB instead of 45 (README, Benchmarks).
LDFLAGS := -s -w -linkmode=internal -X main.version=$(VERSION)
BIN ?= collector

test:
	bash scripts/test.sh $(TESTFLAGS)

build:
	go build -tags $(GOTAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/collector

run:
	go run -tags $(GOTAGS) ./cmd/collector --sync-interval 60

servers:
	bash scripts/servers.sh start

servers-stop:
	bash scripts/servers.sh stop

bench:
	bash bench/run.sh
