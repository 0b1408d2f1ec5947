# The collector's image: the binary built the way `make build` builds it (the
# same go generate, tags and ldflags; deploy/ tests that they agree): static,
# cgo off; NVML (libnvidia-ml.so.1, which the NVIDIA container toolkit
# mounts) is reached at run time through the NVML helper the binary embeds.
#
# No `# syntax=` line: the engine's built-in Dockerfile frontend handles
# RUN --mount, and a syntax line makes every build fetch a frontend image from
# Docker Hub, which an air-gapped build cannot. The build needs BuildKit
# (DOCKER_BUILDKIT=1 with a 20.10 client; the default from Docker 23 on).
#
# The runtime base is Debian bookworm-slim, not distroless/static, though the
# binary needs no libc: tini is PID 1, so that wrapper mode
# (`collector -- COMMAND`) reaps the orphans the command leaves behind (-s:
# tini registers as a subreaper, so it also reaps, and does not warn, where it
# is not PID 1: a pod with shareProcessNamespace); the Kubernetes wrapper
# form's init container runs the image's `cp` to copy the collector and
# tini-static into the job's pod; the compose demo's healthcheck runs `test`.
#
#   DOCKER_BUILDKIT=1 docker build --build-arg VERSION="$(git describe --always --dirty)" -t collector .
#   docker run --rm collector version

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go generate ./resources/nvml \
	&& CGO_ENABLED=0 go build -tags disable_grpc_modules,nvml_helper -ldflags "-s -w -X main.version=${VERSION}" -o /out/collector ./cmd/collector

FROM debian:bookworm-slim
# ca-certificates for the stores' TLS; tini (and tini-static, which the
# Kubernetes wrapper form copies into the job's image) as PID 1. A non-root
# user with a home folder and a state folder of its own.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates tini \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --gid 65532 collector \
	&& useradd --uid 65532 --gid 65532 --create-home --home-dir /home/collector --shell /usr/sbin/nologin collector \
	&& install -d -o 65532 -g 65532 -m 0750 /var/lib/collector
COPY --from=build /out/collector /usr/local/bin/collector
USER 65532:65532
WORKDIR /home/collector
ENV COLLECTOR_STATE_DIR=/var/lib/collector
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/collector"]
