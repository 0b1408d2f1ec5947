.PHONY: test build run servers servers-stop bench

# Extra go test flags: make test TESTFLAGS="-run TestS3 -v"
TESTFLAGS ?=

test:
	bash scripts/test.sh $(TESTFLAGS)

build:
	go build -o collector ./cmd/collector

run:
	go run ./cmd/collector --sync-interval 60

servers:
	bash scripts/servers.sh start

servers-stop:
	bash scripts/servers.sh stop

bench:
	bash bench/run.sh
