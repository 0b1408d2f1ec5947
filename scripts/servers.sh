#!/usr/bin/env bash
# Storage emulators for the collector tests, all on 127.0.0.1:
#   S3    versitygw (posix backend)   default port 7070
#   S3    MinIO (single drive)        default port 9000 (a second S3 server, in its default mode)
#   GCS   fake-gcs-server             default port 4443
#   Azure Azurite (blob service)      default port 10000
#
# As a library (scripts/test.sh sources it):
#   install_servers         install the pinned versions into the cache (skips what is there;
#                           install_minio: MinIO and mc alone);
#                           a go-installed one already in $(go env GOPATH)/bin at the pinned
#                           version is copied, not built again
#   start_servers DIR       start all four with data and logs under DIR and export the
#                           COLLECTOR_TEST_* variables the Go tests read (on failure the
#                           caller stops them and shows the logs)
#   stop_servers DIR        stop the servers started with DIR
#   show_server_logs DIR    print the last 50 lines of each server log
#   print_server_env        print the COLLECTOR_TEST_* variables as `export` lines
#
# As a program:
#   scripts/servers.sh start    start in the background, print `export ...` lines:
#                                 eval "$(scripts/servers.sh start)"
#   scripts/servers.sh stop     stop them (pid files in $COLLECTOR_TEST_STATE_DIR)
#   scripts/servers.sh status | env | install
#
# Settings (environment):
#   COLLECTOR_TEST_CACHE      install cache (default $HOME/.cache/collector-test)
#   COLLECTOR_TEST_STATE_DIR  data, logs and pid files for `start` (default /tmp/collector-test-servers)
#   COLLECTOR_TEST_S3_PORT, COLLECTOR_TEST_MINIO_PORT, COLLECTOR_TEST_GCS_PORT, COLLECTOR_TEST_AZURE_PORT
#                             fixed ports; without them the default port is used when it
#                             is free and a free port is picked otherwise

VERSITYGW_VERSION=v1.8.0
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0
# MinIO publishes no semantic versions to the module proxy: pseudo-versions of its master.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9

COLLECTOR_TEST_CACHE="${COLLECTOR_TEST_CACHE:-$HOME/.cache/collector-test}"

_SRV_BUCKET=collector-test
_SRV_S3_ACCESS_KEY=k
_SRV_S3_SECRET_KEY=s
# MinIO wants a user of 3 characters or more and a password of 8 or more.
_SRV_MINIO_USER=collector
_SRV_MINIO_PASSWORD=collector-secret
_SRV_AZURE_ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, not a secret).
_SRV_AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
_SRV_NAMES=(s3 minio gcs azure)
_SRV_WAIT_SECONDS=60

_srv_say() { printf 'servers: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- install

# _srv_go_bin_ok BINARY MODULE VERSION: the binary exists and was built from MODULE@VERSION.
# MinIO and mc built by scripts/offline-images.sh (the compose demo's images) come from a copy of
# the module, which Go stamps "(devel)": that script pins the same versions, and its build is
# kept rather than made a second time.
_srv_go_bin_ok() {
	[ -x "$1" ] || return 1
	go version -m "$1" 2>/dev/null |
		awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && ($3 == v || ($3 == "(devel)" && m ~ /^github.com\/minio\//)) { ok = 1 } END { exit !ok }'
}

# _srv_go_install NAME PACKAGE MODULE VERSION
_srv_go_install() {
	local name=$1 pkg=$2 mod=$3 version=$4
	local bin="$COLLECTOR_TEST_CACHE/bin/$name"
	if _srv_go_bin_ok "$bin" "$mod" "$version"; then
		return 0
	fi
	# Built already by another script of this project (the compose demo's image stand-ins)?
	local gobin
	gobin="$(go env GOPATH 2>/dev/null | cut -d: -f1)/bin/$name"
	if _srv_go_bin_ok "$gobin" "$mod" "$version" && cp "$gobin" "$bin.tmp.$$" && mv "$bin.tmp.$$" "$bin"; then
		_srv_say "copied $name $version from $gobin"
		return 0
	fi
	_srv_say "installing $name $version into $COLLECTOR_TEST_CACHE/bin"
	# Run outside this module so its go.mod/go.work and GOFLAGS=-mod=... cannot interfere.
	if ! (cd "$COLLECTOR_TEST_CACHE" &&
		GOBIN="$COLLECTOR_TEST_CACHE/bin" GOWORK=off GOFLAGS=-buildvcs=false \
			go install "$pkg@$version"); then
		_srv_say "ERROR: go install $pkg@$version failed"
		return 1
	fi
	if ! _srv_go_bin_ok "$bin" "$mod" "$version"; then
		_srv_say "ERROR: $bin is not $mod $version after go install"
		return 1
	fi
}

_srv_azurite_ok() {
	[ -x "$COLLECTOR_TEST_CACHE/azurite/node_modules/.bin/azurite-blob" ] &&
		[ "$(cat "$COLLECTOR_TEST_CACHE/azurite/.installed" 2>/dev/null)" = "$AZURITE_VERSION" ]
}

_srv_install_azurite() {
	_srv_azurite_ok && return 0
	if ! command -v npm >/dev/null 2>&1; then
		_srv_say "ERROR: npm not found; Azurite needs Node.js and npm"
		return 1
	fi
	_srv_say "installing azurite $AZURITE_VERSION into $COLLECTOR_TEST_CACHE/azurite"
	# Install next to the final folder and move it into place, so an interrupted
	# install never looks complete.
	local tmp="$COLLECTOR_TEST_CACHE/azurite.tmp.$$"
	rm -rf "$tmp"
	if ! npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier \
		--loglevel=error "azurite@$AZURITE_VERSION" >&2; then
		rm -rf "$tmp"
		_srv_say "ERROR: npm install azurite@$AZURITE_VERSION failed"
		return 1
	fi
	printf '%s\n' "$AZURITE_VERSION" >"$tmp/.installed"
	rm -rf "$COLLECTOR_TEST_CACHE/azurite"
	mv "$tmp" "$COLLECTOR_TEST_CACHE/azurite"
	_srv_azurite_ok
}

install_servers() {
	mkdir -p "$COLLECTOR_TEST_CACHE/bin" || return 1
	if ! command -v go >/dev/null 2>&1; then
		_srv_say "ERROR: go not found"
		return 1
	fi
	# One installer at a time per cache (two test runs starting together).
	local lockfd=
	if command -v flock >/dev/null 2>&1; then
		exec {lockfd}>"$COLLECTOR_TEST_CACHE/.lock"
		flock "$lockfd"
	fi
	local rc=0
	_srv_go_install versitygw github.com/versity/versitygw/cmd/versitygw \
		github.com/versity/versitygw "$VERSITYGW_VERSION" &&
		_srv_go_install fake-gcs-server github.com/fsouza/fake-gcs-server \
			github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION" &&
		_srv_go_install minio github.com/minio/minio github.com/minio/minio "$MINIO_VERSION" &&
		_srv_go_install mc github.com/minio/mc github.com/minio/mc "$MC_VERSION" &&
		_srv_install_azurite || rc=1
	if [ -n "$lockfd" ]; then
		exec {lockfd}>&-
	fi
	return "$rc"
}

# install_minio: MinIO and mc alone, for scripts that run their own (bench/).
install_minio() {
	mkdir -p "$COLLECTOR_TEST_CACHE/bin" || return 1
	_srv_go_install minio github.com/minio/minio github.com/minio/minio "$MINIO_VERSION" &&
		_srv_go_install mc github.com/minio/mc github.com/minio/mc "$MC_VERSION"
}

# ---------------------------------------------------------------- ports

# _srv_port_busy PORT: something accepts connections on 127.0.0.1:PORT.
_srv_port_busy() {
	if command -v timeout >/dev/null 2>&1; then
		# shellcheck disable=SC2016 # $1 is expanded by the inner bash
		timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# _srv_pick_port NAME FIXED DEFAULT: prints the port to use.
# FIXED (from COLLECTOR_TEST_<NAME>_PORT) must be free; otherwise DEFAULT if free,
# else a free port from 20000-32767 (below Linux's ephemeral range).
_srv_pick_port() {
	local name=$1 fixed=$2 default=$3 port n
	if [ -n "$fixed" ]; then
		if _srv_port_busy "$fixed"; then
			_srv_say "ERROR: $name port $fixed (set in the environment) is already in use;" \
				"a leftover server? try: scripts/servers.sh stop"
			return 1
		fi
		printf '%s\n' "$fixed"
		return 0
	fi
	if ! _srv_port_busy "$default"; then
		printf '%s\n' "$default"
		return 0
	fi
	for ((n = 0; n < 100; n++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		if ! _srv_port_busy "$port"; then
			_srv_say "$name: default port $default is in use, using $port"
			printf '%s\n' "$port"
			return 0
		fi
	done
	_srv_say "ERROR: no free port found for $name"
	return 1
}

# ---------------------------------------------------------------- start / stop

# _srv_spawn DIR NAME COMMAND...: start COMMAND in the background, output to DIR/logs/NAME.log,
# pid in DIR/NAME.pid. With _SRV_DETACH=1 it gets its own session (outlives the caller).
_srv_spawn() {
	local dir=$1 name=$2
	shift 2
	if [ "${_SRV_DETACH:-0}" = 1 ] && command -v setsid >/dev/null 2>&1; then
		setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
	else
		"$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
	fi
	printf '%s\n' "$!" >"$dir/$name.pid"
}

# _srv_wait DIR NAME PORT [quiet]: wait until the server accepts connections on PORT.
_srv_wait() {
	local dir=$1 name=$2 port=$3 quiet=${4:-} pid deadline
	pid=$(cat "$dir/$name.pid")
	deadline=$((SECONDS + _SRV_WAIT_SECONDS))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			[ -n "$quiet" ] ||
				_srv_say "ERROR: $name server (pid $pid) exited during startup; see $dir/logs/$name.log"
			return 1
		fi
		if _srv_port_busy "$port"; then
			# Still ours? (another process could have taken the port meanwhile)
			if kill -0 "$pid" 2>/dev/null; then
				return 0
			fi
			continue
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			_srv_say "ERROR: $name server did not accept connections on 127.0.0.1:$port" \
				"within ${_SRV_WAIT_SECONDS}s; see $dir/logs/$name.log"
			return 1
		fi
		sleep 0.2
	done
}

_srv_tail() {
	local log="$1/logs/$2.log"
	if [ -s "$log" ]; then
		tail -n 50 "$log" | sed "s/^/  [$2] /" >&2
	else
		printf '  [%s] (log empty)\n' "$2" >&2
	fi
}

show_server_logs() {
	local name
	for name in "${_SRV_NAMES[@]}"; do
		if [ -e "$1/logs/$name.log" ]; then
			_srv_say "last 50 lines of $1/logs/$name.log:"
			_srv_tail "$1" "$name"
		fi
	done
}

# _srv_http_status PORT METHOD PATH [BODY]: prints the HTTP status code (pure bash, no curl).
_srv_http_status() {
	local port=$1 method=$2 path=$3 body=${4:-} fd line code
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
		"$method" "$path" "$port" "${#body}" "$body" >&"$fd"
	IFS= read -r -t 10 line <&"$fd" || line=
	exec {fd}>&-
	read -r _ code _ <<<"$line"
	printf '%s\n' "${code:-000}"
}

# _srv_spawn_s3 DIR PORT [POSIX-OPTIONS...]
_srv_spawn_s3() {
	local dir=$1 port=$2
	shift 2
	_srv_spawn "$dir" s3 env ROOT_ACCESS_KEY="$_SRV_S3_ACCESS_KEY" ROOT_SECRET_KEY="$_SRV_S3_SECRET_KEY" \
		"$COLLECTOR_TEST_CACHE/bin/versitygw" --port "127.0.0.1:$port" \
		posix "$@" "$dir/s3"
}

# _srv_start_minio DIR PORT: MinIO on one drive, its bucket made with mc.
_srv_start_minio() {
	local dir=$1 port=$2 mc n
	mkdir -p "$dir/minio" "$dir/mc" || return 1
	# No console (MINIO_BROWSER=off): it would take a second port; the S3 API is as shipped.
	_srv_spawn "$dir" minio env MINIO_ROOT_USER="$_SRV_MINIO_USER" MINIO_ROOT_PASSWORD="$_SRV_MINIO_PASSWORD" \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$COLLECTOR_TEST_CACHE/bin/minio" server --quiet --address "127.0.0.1:$port" "$dir/minio"
	_srv_wait "$dir" minio "$port" || return 1
	mc=("$COLLECTOR_TEST_CACHE/bin/mc" --config-dir "$dir/mc" --no-color --quiet)
	"${mc[@]}" alias set collector-test "http://127.0.0.1:$port" "$_SRV_MINIO_USER" "$_SRV_MINIO_PASSWORD" \
		>>"$dir/logs/minio.log" 2>&1 || return 1
	# The port opens before the drive is ready: retry the bucket for a while.
	for ((n = 0; n < 50; n++)); do
		if "${mc[@]}" mb --ignore-existing "collector-test/$_SRV_BUCKET" >>"$dir/logs/minio.log" 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	_srv_say "ERROR: could not create the MinIO bucket $_SRV_BUCKET; see $dir/logs/minio.log"
	return 1
}

start_servers() {
	local dir=$1 s3_port minio_port gcs_port azure_port code
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		_srv_say "ERROR: start_servers needs an existing folder"
		return 1
	fi
	dir=$(cd "$dir" && pwd) || return 1
	s3_port=$(_srv_pick_port S3 "${COLLECTOR_TEST_S3_PORT:-}" 7070) || return 1
	minio_port=$(_srv_pick_port MinIO "${COLLECTOR_TEST_MINIO_PORT:-}" 9000) || return 1
	gcs_port=$(_srv_pick_port GCS "${COLLECTOR_TEST_GCS_PORT:-}" 4443) || return 1
	azure_port=$(_srv_pick_port Azure "${COLLECTOR_TEST_AZURE_PORT:-}" 10000) || return 1

	mkdir -p "$dir/logs" "$dir/s3/$_SRV_BUCKET" "$dir/gcs/$_SRV_BUCKET" "$dir/azurite" || return 1

	# S3: every top-level folder of the posix root is a bucket.
	_srv_spawn_s3 "$dir" "$s3_port"
	# GCS: with the filesystem backend every folder of the root is a bucket.
	_srv_spawn "$dir" gcs "$COLLECTOR_TEST_CACHE/bin/fake-gcs-server" \
		-scheme http -host 127.0.0.1 -port "$gcs_port" -public-host "127.0.0.1:$gcs_port" \
		-backend filesystem -filesystem-root "$dir/gcs"
	_srv_spawn "$dir" azure "$COLLECTOR_TEST_CACHE/azurite/node_modules/.bin/azurite-blob" \
		--blobHost 127.0.0.1 --blobPort "$azure_port" --location "$dir/azurite" \
		--skipApiVersionCheck --disableTelemetry

	if ! _srv_wait "$dir" s3 "$s3_port" quiet; then
		# versitygw keeps object metadata in xattrs; on a filesystem without user
		# xattrs (e.g. an old-kernel tmpfs) keep it in a sidecar folder instead.
		if grep -q 'xattr check failed' "$dir/logs/s3.log" 2>/dev/null; then
			_srv_say "S3: no xattr support under $dir, restarting versitygw with --sidecar"
			# (not "$dir/s3-meta": versitygw's inside-the-root check is a plain prefix test)
			mkdir -p "$dir/vgw-meta"
			_srv_spawn_s3 "$dir" "$s3_port" --sidecar "$dir/vgw-meta"
			_srv_wait "$dir" s3 "$s3_port" || return 1
		else
			_srv_say "ERROR: s3 server failed to start; see $dir/logs/s3.log"
			return 1
		fi
	fi
	_srv_start_minio "$dir" "$minio_port" || return 1
	_srv_wait "$dir" gcs "$gcs_port" || return 1
	_srv_wait "$dir" azure "$azure_port" || return 1

	# The GCS bucket comes from its folder; create it through the API if it did not.
	code=$(_srv_http_status "$gcs_port" GET "/storage/v1/b/$_SRV_BUCKET")
	if [ "$code" != 200 ]; then
		code=$(_srv_http_status "$gcs_port" POST "/storage/v1/b?project=test" "{\"name\":\"$_SRV_BUCKET\"}")
		if [ "$code" != 200 ] && [ "$code" != 409 ]; then
			_srv_say "ERROR: could not create GCS bucket $_SRV_BUCKET (HTTP $code); see $dir/logs/gcs.log"
			return 1
		fi
	fi

	export COLLECTOR_TEST_SERVERS=1
	export COLLECTOR_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
	export COLLECTOR_TEST_S3_BUCKET="$_SRV_BUCKET"
	export COLLECTOR_TEST_S3_ACCESS_KEY="$_SRV_S3_ACCESS_KEY"
	export COLLECTOR_TEST_S3_SECRET_KEY="$_SRV_S3_SECRET_KEY"
	export COLLECTOR_TEST_S3_DIR="$dir/s3"
	# For tests that run an S3 server of their own (e.g. one they stop and start again).
	export COLLECTOR_TEST_VERSITYGW="$COLLECTOR_TEST_CACHE/bin/versitygw"
	export COLLECTOR_TEST_MINIO_ENDPOINT="http://127.0.0.1:$minio_port"
	export COLLECTOR_TEST_MINIO_BUCKET="$_SRV_BUCKET"
	export COLLECTOR_TEST_MINIO_ACCESS_KEY="$_SRV_MINIO_USER"
	export COLLECTOR_TEST_MINIO_SECRET_KEY="$_SRV_MINIO_PASSWORD"
	export COLLECTOR_TEST_MINIO="$COLLECTOR_TEST_CACHE/bin/minio"
	export COLLECTOR_TEST_MC="$COLLECTOR_TEST_CACHE/bin/mc"
	export COLLECTOR_TEST_GCS_HOST="127.0.0.1:$gcs_port"
	export COLLECTOR_TEST_GCS_BUCKET="$_SRV_BUCKET"
	export COLLECTOR_TEST_AZURE_ENDPOINT="http://127.0.0.1:$azure_port/$_SRV_AZURE_ACCOUNT"
	export COLLECTOR_TEST_AZURE_ACCOUNT="$_SRV_AZURE_ACCOUNT"
	export COLLECTOR_TEST_AZURE_KEY="$_SRV_AZURE_KEY"
}

print_server_env() {
	local var
	for var in COLLECTOR_TEST_SERVERS \
		COLLECTOR_TEST_S3_ENDPOINT COLLECTOR_TEST_S3_BUCKET COLLECTOR_TEST_S3_ACCESS_KEY \
		COLLECTOR_TEST_S3_SECRET_KEY COLLECTOR_TEST_S3_DIR COLLECTOR_TEST_VERSITYGW \
		COLLECTOR_TEST_MINIO_ENDPOINT COLLECTOR_TEST_MINIO_BUCKET COLLECTOR_TEST_MINIO_ACCESS_KEY \
		COLLECTOR_TEST_MINIO_SECRET_KEY COLLECTOR_TEST_MINIO COLLECTOR_TEST_MC \
		COLLECTOR_TEST_GCS_HOST COLLECTOR_TEST_GCS_BUCKET \
		COLLECTOR_TEST_AZURE_ENDPOINT COLLECTOR_TEST_AZURE_ACCOUNT COLLECTOR_TEST_AZURE_KEY; do
		printf 'export %s=%q\n' "$var" "${!var}"
	done
}

# _srv_is_ours PID DIR: PID is alive and is one of our servers for DIR (its command
# line names DIR), so a recycled pid is never killed.
_srv_is_ours() {
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/cmdline" ]; then
		tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
	fi
}

stop_servers() {
	local dir=$1 name pid pids=() n
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd) || return 0
	for name in "${_SRV_NAMES[@]}"; do
		[ -f "$dir/$name.pid" ] || continue
		pid=$(cat "$dir/$name.pid")
		if [ -n "$pid" ] && _srv_is_ours "$pid" "$dir"; then
			kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
		fi
	done
	for ((n = 0; n < 50; n++)); do
		local alive=()
		for pid in ${pids[@]+"${pids[@]}"}; do
			kill -0 "$pid" 2>/dev/null && alive+=("$pid")
		done
		pids=(${alive[@]+"${alive[@]}"})
		[ "${#pids[@]}" -eq 0 ] && break
		sleep 0.1
	done
	for pid in ${pids[@]+"${pids[@]}"}; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	# Reap our own children so no zombies are left (no-op for detached ones).
	wait 2>/dev/null || true
	for name in "${_SRV_NAMES[@]}"; do
		rm -f "$dir/$name.pid"
	done
	return 0
}

# ---------------------------------------------------------------- program

_srv_state_dir() { printf '%s\n' "${COLLECTOR_TEST_STATE_DIR:-/tmp/collector-test-servers}"; }

_srv_running() {
	local dir=$1 name pid
	for name in "${_SRV_NAMES[@]}"; do
		pid=$(cat "$dir/$name.pid" 2>/dev/null) || return 1
		_srv_is_ours "$pid" "$dir" || return 1
	done
}

_srv_main() {
	set -euo pipefail
	local state
	state=$(_srv_state_dir)
	case "${1:-}" in
	install)
		install_servers
		;;
	start)
		if [ -f "$state/env.sh" ] && _srv_running "$state"; then
			_srv_say "already running (state in $state)"
			cat "$state/env.sh"
			return 0
		fi
		stop_servers "$state"
		rm -rf "$state"
		install_servers
		mkdir -p "$state"
		if ! _SRV_DETACH=1 start_servers "$state"; then
			stop_servers "$state"
			show_server_logs "$state"
			return 1
		fi
		print_server_env >"$state/env.sh"
		cat "$state/env.sh"
		_srv_say "started S3 $COLLECTOR_TEST_S3_ENDPOINT, MinIO $COLLECTOR_TEST_MINIO_ENDPOINT, GCS $COLLECTOR_TEST_GCS_HOST," \
			"Azure $COLLECTOR_TEST_AZURE_ENDPOINT; logs in $state/logs;" \
			"stop with: scripts/servers.sh stop"
		;;
	stop)
		if [ -d "$state" ]; then
			stop_servers "$state"
			rm -rf "$state"
			_srv_say "stopped"
		else
			_srv_say "not running (no $state)"
		fi
		;;
	status)
		if [ -d "$state" ] && _srv_running "$state"; then
			_srv_say "running (state in $state)"
		else
			_srv_say "not running"
			return 1
		fi
		;;
	env)
		if [ -f "$state/env.sh" ] && _srv_running "$state"; then
			cat "$state/env.sh"
		else
			_srv_say "not running"
			return 1
		fi
		;;
	*)
		echo "usage: $0 install|start|stop|status|env" >&2
		echo "  eval \"\$($0 start)\"   start the emulators and export COLLECTOR_TEST_* variables" >&2
		return 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	_srv_main "$@"
fi
