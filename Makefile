.PHONY: test build run servers servers-stop bench

# Extra go test flags: make test TESTFLAGS="-run TestS3 -v"
TESTFLAGS ?=

# The shipped binary leaves out the GCS client's gRPC direct-path modules (xDS,
# RLS), which the collector never uses (it talks to GCS over HTTP): a smaller
# binary and less resident memory (figures in the README).
GOTAGS ?= disable_grpc_modules

test:
	bash scripts/test.sh $(TESTFLAGS)

build:
	go build -tags $(GOTAGS) -o collector ./cmd/collector

run:
	go run -tags $(GOTAGS) ./cmd/collector --sync-interval 60

servers:
	bash scripts/servers.sh start

servers-stop:
	bash scripts/servers.sh stop

bench:
	bash bench/run.sh
