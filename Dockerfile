# syntax=docker/dockerfile:1
#
# The collector's image: the binary built the way `make build` builds it (the
# same tags and ldflags; deploy/ tests that the two commands agree), with cgo
# on, on a glibc base so that NVML (libnvidia-ml.so.1, mounted by the NVIDIA
# container toolkit) can be loaded at run time. tini is PID 1, so that wrapper
# mode (`collector -- COMMAND`) reaps the orphans the command leaves behind
# (-s: tini registers as a subreaper, so it also reaps, and does not warn,
# where it is not PID 1: a pod with shareProcessNamespace).
#
#   docker build --build-arg VERSION="$(git describe --always --dirty)" -t collector .
#   docker run --rm collector version

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=1 go build -tags disable_grpc_modules -ldflags "-s -w -linkmode=internal -X main.version=${VERSION}" -o /out/collector ./cmd/collector

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
