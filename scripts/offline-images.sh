#!/usr/bin/env bash
# Makes sure that every image the Dockerfile and docker-compose.yml name is in the local
# engine, so that `docker compose up --build` pulls nothing: an image already there is kept,
# one the registry gives is pulled, and only where the registry cannot be reached (an
# air-gapped machine, this project's CI) a local stand-in is built under exactly that name:
#   debian:bookworm-slim        mmdebstrap minbase with the official image's apt settings
#   golang:1.26-bookworm        the debian stand-in + this host's Go (same minor) + gcc, git, curl
#   busybox:1.37                scratch + Debian's busybox-static (1.35), one link per applet
#   quay.io/minio/minio:...     the debian stand-in + minio + mc (ENTRYPOINT ["minio"])
#   quay.io/minio/mc:...        the debian stand-in + mc (ENTRYPOINT ["mc"])
# It also installs, where missing, the docker CLI plugins the demo needs: compose v2 (v5.6.0)
# and buildx (v0.38.2; compose builds through buildx >= 0.17), built from the Go module proxy.
#
# Builds are shared and kept: Go binaries (minio, mc, docker-compose, docker-buildx) go to
# $COLLECTOR_TEST_CACHE/bin (scripts/servers.sh's cache; a minio or mc already there is
# used as it is), the Go module and build caches are Go's own. Needs root (apt-get for
# mmdebstrap), a running dockerd, Go 1.26, the Debian mirror of /etc/apt/sources.list*, and
# the Go module proxy. Containers must reach the Debian mirror (the golang stand-in runs
# apt-get) and, for the Dockerfile's `go mod download`, the Go module proxy.
#
# With arguments, only those images are seen to (and no CLI plugins).
#
# Settings: FORCE=1 rebuilds every stand-in; MIRROR=, SECURITY_MIRROR= the Debian mirrors;
# EXTRA_CA_DIR= CAs the golang stand-in trusts (default /usr/local/share/ca-certificates:
# a TLS-intercepting proxy in front of the Go proxy). Stand-ins differ from the real
# images in size and busybox version; minio and mc are builds of pinned commits.
set -euo pipefail
cd "$(dirname "$0")/.."

FORCE=${FORCE:-0}
NICE="nice -n 19"
COLLECTOR_TEST_CACHE=${COLLECTOR_TEST_CACHE:-$HOME/.cache/collector-test}
BIN=$COLLECTOR_TEST_CACHE/bin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/offline-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$BIN"

COMPOSE_VERSION=v5.6.0
BUILDX_VERSION=v0.38.2
# The newest commits the module proxy has (MinIO tags its releases RELEASE.<date>, which
# the proxy does not serve).
MINIO_MODULE=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
MC_MODULE=github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9

log() { printf 'offline-images: %s\n' "$*" >&2; }

# --- the images the project names --------------------------------------------------------
# The Dockerfile's FROM lines (its global ARGs expanded) and docker-compose.yml's image: lines
# of services that are not built here.
images() {
	awk '
		/^ARG [A-Za-z_]+=/ && !from { split(substr($0, 5), kv, "="); arg[kv[1]] = kv[2] }
		/^FROM / { from = 1; img = $2
			for (k in arg) { gsub("\\$\\{" k "\\}", arg[k], img) }
			if (img !~ /^(scratch|build)$/) print img }
	' Dockerfile
	awk '
		function flush() { if (img != "" && !built) print img; img = ""; built = 0 }
		/^[^ #]/ || /^  [^ #]/ { flush() }
		/^    build:/ { built = 1 }
		/^    image:/ { img = $2 }
		END { flush() }
	' docker-compose.yml
}

# have IMAGE: in the engine (with FORCE=1: built by this run).
made=" "
have() {
	case $made in *" $1 "*) return 0 ;; esac
	[ "$FORCE" != 1 ] && docker image inspect "$1" >/dev/null 2>&1
}

# --- the Debian mirror, as this host's apt knows it ----------------------------------------
mirror_from_sources() { # mirror_from_sources SUFFIX: the first URI ending in /SUFFIX
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' || true
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' || true
	} | sed 's,/*$,,' | awk -v s="/$1" 'substr($0, length($0) - length(s) + 1) == s' | sed -n 1p
}
mirrors() {
	MIRROR=${MIRROR:-$(mirror_from_sources debian || true)}
	SECURITY_MIRROR=${SECURITY_MIRROR:-$(mirror_from_sources debian-security || true)}
	[ -n "$MIRROR" ] || { log "no Debian mirror found in /etc/apt/sources.list*; set MIRROR="; exit 1; }
	[ -n "$SECURITY_MIRROR" ] || SECURITY_MIRROR=${MIRROR%/debian}/debian-security
}

# --- Go programs from the module proxy -----------------------------------------------------
# go_build_module MODULE@VERSION PACKAGE OUT [LDFLAGS]: built inside a copy of the module, so
# that its go.mod's replace and exclude directives hold (`go install pkg@version` refuses
# them: compose's go.mod has excludes).
go_build_module() {
	local dir src=$WORK/src
	dir=$(cd "$WORK" && GOWORK=off GOFLAGS= go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
	(cd "$src" && GOWORK=off GOFLAGS=-buildvcs=false $NICE go build -trimpath -ldflags "-s -w ${4:-}" -o "$3.tmp" "$2")
	mv "$3.tmp" "$3"
	rm -rf "$src"
}
# built BINARY MODULE@VERSION: BINARY exists and was built from that module version.
built() {
	[ -x "$1" ] && go version -m "$1" 2>/dev/null |
		awk -v m="${2%@*}" -v v="${2#*@}" '$1 == "mod" && $2 == m && $3 == v { ok = 1 } END { exit !ok }'
}

PLUGINS=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
mkdir -p "$PLUGINS"
plugins=1
[ $# -eq 0 ] || plugins=0
# compose refuses a buildx without a version ("compose build requires buildx 0.17.0 or
# later"), and both print the version set with -X.
if [ "$plugins" = 1 ] && ! docker buildx version 2>/dev/null | grep -q ' v0\.'; then
	if ! built "$BIN/docker-buildx" "github.com/docker/buildx@$BUILDX_VERSION"; then
		log "building docker-buildx $BUILDX_VERSION"
		go_build_module "github.com/docker/buildx@$BUILDX_VERSION" ./cmd/buildx "$BIN/docker-buildx" \
			"-X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Revision=$BUILDX_VERSION"
	fi
	install -m 0755 "$BIN/docker-buildx" "$PLUGINS/docker-buildx"
fi
if [ "$plugins" = 1 ] && ! docker compose version >/dev/null 2>&1; then
	if ! built "$BIN/docker-compose" "github.com/docker/compose/v5@$COMPOSE_VERSION"; then
		log "building docker-compose $COMPOSE_VERSION"
		go_build_module "github.com/docker/compose/v5@$COMPOSE_VERSION" ./cmd "$BIN/docker-compose" \
			"-X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION"
	fi
	install -m 0755 "$BIN/docker-compose" "$PLUGINS/docker-compose"
fi

# --- stand-ins ------------------------------------------------------------------------------
build() { # build IMAGE CONTEXT [DOCKERFILE]
	DOCKER_BUILDKIT=1 $NICE docker build -q -t "$1" ${3:+-f "$3"} "$2" >/dev/null
}

# debian_slim IMAGE: mmdebstrap minbase of the release the tag names. The official image's
# apt settings (debuerreotype's): no pkgcache.bin/srcpkgcache.bin, gzipped indexes, no
# translations, and a policy-rc.d that keeps services from starting; without them an
# `apt-get install` layer is ~90 MB larger than on the real image.
debian_slim() {
	local release=${1#*:}; release=${release%-slim}
	command -v mmdebstrap >/dev/null || $NICE env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
	mirrors
	local ov=$WORK/debian-overlay; rm -rf "$ov"; mkdir -p "$ov/etc/apt/apt.conf.d" "$ov/usr/sbin"
	cat > "$ov/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache "";
	Dir::Cache::srcpkgcache "";
	EOF
	printf '%s\n' 'Acquire::GzipIndexes "true";' 'Acquire::CompressionTypes::Order:: "gz";' > "$ov/etc/apt/apt.conf.d/docker-gzip-indexes"
	printf '%s\n' 'Acquire::Languages "none";' > "$ov/etc/apt/apt.conf.d/docker-no-languages"
	printf '%s\n' 'Apt::AutoRemove::SuggestsImportant "false";' > "$ov/etc/apt/apt.conf.d/docker-autoremove-suggests"
	printf '#!/bin/sh\nexit 101\n' > "$ov/usr/sbin/policy-rc.d"; chmod 0755 "$ov/usr/sbin/policy-rc.d"
	$NICE mmdebstrap --quiet --variant=minbase \
		--customize-hook="sync-in $ov /" \
		--customize-hook='rm -f "$1"/var/cache/apt/*.bin; rm -rf "$1"/var/lib/apt/lists/*' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		"$release" - \
		"deb $MIRROR $release main" "deb $MIRROR $release-updates main" \
		"deb $SECURITY_MIRROR $release-security main" >"$WORK/rootfs.tar"
	# Imported only once whole: an interrupted mmdebstrap must not leave a broken image
	# under the real name.
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' "$WORK/rootfs.tar" "$1" >/dev/null
	rm -f "$WORK/rootfs.tar"
}

# golang IMAGE: this host's Go on the debian stand-in of the tag's release, as the real
# image: GOPATH=/go, GOTOOLCHAIN=local, gcc/libc6-dev/make/pkg-config, git, curl, Go's
# default GOPROXY.
golang() {
	local tag=${1#*:} goroot gover release
	release=${tag#*-}
	goroot=$(go env GOROOT); gover=$(go env GOVERSION); gover=${gover#go}
	case $gover in "${tag%%-*}"*) ;; *) log "host Go is $gover, not ${tag%%-*}.x: cannot stand in for $1"; exit 1 ;; esac
	need_image "debian:$release-slim"
	local ctx=$WORK/golang; mkdir -p "$ctx/extra-ca"
	cat > "$ctx/Dockerfile" <<-EOF
	FROM debian:$release-slim
	RUN apt-get update \\
	 && apt-get install -y --no-install-recommends ca-certificates curl git gcc libc6-dev make pkg-config \\
	 && rm -rf /var/lib/apt/lists/*
	ENV GOLANG_VERSION=$gover GOTOOLCHAIN=local GOPATH=/go
	ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	COPY extra-ca/ /usr/local/share/ca-certificates/
	RUN update-ca-certificates
	COPY go /usr/local/go
	RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
	WORKDIR /go
	EOF
	cp "${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"/*.crt "$ctx/extra-ca/" 2>/dev/null || true
	# The context is streamed: the Dockerfile plus GOROOT renamed to go/ (its pkg/ cache left out).
	tar -c -C "$ctx" Dockerfile extra-ca -C "$(dirname "$goroot")" --exclude='go/pkg/obj' \
		--transform "s,^$(basename "$goroot"),go," "$(basename "$goroot")" |
		DOCKER_BUILDKIT=1 $NICE docker build -q -t "$1" - >/dev/null
}

busybox() {
	local ctx=$WORK/busybox; mkdir -p "$ctx/deb" "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
	(cd "$ctx" && apt-get download busybox-static >/dev/null 2>&1)
	dpkg-deb -x "$ctx"/busybox-static_*.deb "$ctx/deb"
	cp "$ctx/deb/bin/busybox" "$ctx/rootfs/bin/busybox"
	for a in $("$ctx/rootfs/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$ctx/rootfs/bin/$a"
	done
	chmod 1777 "$ctx/rootfs/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' > "$ctx/rootfs/etc/group"
	printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' > "$ctx/Dockerfile"
	build "$1" "$ctx"
}

# minio_bin NAME MODULE@VERSION: $BIN/NAME, built unless it is there (any version).
minio_bin() {
	if [ ! -x "$BIN/$1" ]; then
		log "building $1 ($2)"
		go_build_module "$2" . "$BIN/$1"
	fi
}

# minio IMAGE server|client
minio() {
	need_image debian:bookworm-slim
	minio_bin mc "$MC_MODULE"
	local ctx=$WORK/minio; mkdir -p "$ctx"; cp "$BIN/mc" "$ctx/"
	if [ "$2" = server ]; then
		minio_bin minio "$MINIO_MODULE"
		cp "$BIN/minio" "$ctx/"
		printf '%s\n' 'FROM debian:bookworm-slim' 'COPY minio mc /usr/bin/' 'EXPOSE 9000' 'VOLUME ["/data"]' 'ENTRYPOINT ["minio"]' > "$ctx/Dockerfile"
	else
		printf '%s\n' 'FROM debian:bookworm-slim' 'COPY mc /usr/bin/' 'ENTRYPOINT ["mc"]' > "$ctx/Dockerfile"
	fi
	build "$1" "$ctx"
}

# need_image IMAGE: present, pulled, or a stand-in built.
need_image() {
	have "$1" && return 0
	if [ "$FORCE" != 1 ] && timeout 300 docker pull -q "$1" >/dev/null 2>"$WORK/pull.err"; then
		log "$1: pulled"
		return 0
	fi
	[ "$FORCE" = 1 ] || log "$1: cannot pull ($(tail -1 "$WORK/pull.err")); building a stand-in"
	local start=$SECONDS
	case $1 in
	debian:*-slim) debian_slim "$1" ;;
	golang:*-*) golang "$1" ;;
	busybox:*) busybox "$1" ;;
	*/minio/minio:*) minio "$1" server ;;
	*/minio/mc:*) minio "$1" client ;;
	*) log "no stand-in for $1: add one to $0"; exit 1 ;;
	esac
	made="$made$1 "
	log "$1: stand-in built in $((SECONDS - start)) s"
}

for img in ${*:-$(images | sort -u)}; do
	need_image "$img"
done
