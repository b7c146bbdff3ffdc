#!/usr/bin/env bash
# Runs a command with a throwaway Redis server and INFLEET_TEST_REDIS_ADDR set to it (host:port),
# then stops the server, whether the command succeeded, failed or was interrupted; exits with
# the command's status. Only the benchmarks need Redis (asynq, the peer bench/peers measures);
# `make test` does not.
#
#   .ci/peers/with-redis.sh go run ./bench/load
#
# When INFLEET_TEST_REDIS_ADDR is already set, the command runs against that server and nothing
# is started. Otherwise Debian's redis-server is installed with apt-get when no redis-server
# binary is found, and the server gets the first port from 56379 up that is neither listening
# nor claimed by another run, with persistence off (no RDB snapshots, no AOF) and its files in a
# temporary directory. Its log is ${TMPDIR:-/tmp}/infleet-redis-PORT/server.log while it runs.
set -euo pipefail

if [ -n "${INFLEET_TEST_REDIS_ADDR:-}" ]; then
	exec "$@"
fi

tmp=${TMPDIR:-/tmp}
first_port=56379
last_port=$((first_port + 100))

log() { echo "redis peer: $*" >&2; }

install_server() {
	if command -v redis-server >/dev/null 2>&1; then
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "redis-server is not installed and we are not root: install the redis-server package"
		exit 1
	fi
	log "installing redis-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends redis-server >&2; then
		apt-get update -qq >&2
		apt-get install -y -qq --no-install-recommends redis-server >&2
	fi
	command -v redis-server >/dev/null 2>&1 || { log "no redis-server on PATH after installing"; exit 1; }
}

# ping answers 0 when a Redis server on port $1 replies +PONG.
ping() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=""
	exec 3>&- 3<&-
	[ "${reply%$'\r'}" = "+PONG" ]
}

# claim sets port and dir to the first port from $port up whose directory this run could create
# and on which nothing listens.
claim() {
	while :; do
		if [ "$port" -gt "$last_port" ]; then
			log "no free port in $first_port-$last_port (stale runs? see $tmp/infleet-redis-*)"
			exit 1
		fi
		dir="$tmp/infleet-redis-$port"
		if mkdir "$dir" 2>/dev/null; then
			if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				return
			fi
			rmdir "$dir"
		fi
		port=$((port + 1))
	done
}

pid=""
dir=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -n "$dir" ]; then
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_server

# A port that nothing listens on may still be held by a client socket (the ephemeral range
# covers it), so a server that exits at start moves on to the next port.
port=$first_port
for attempt in 1 2 3 4 5; do
	claim
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
		--logfile "$dir/server.log" --daemonize no &
	pid=$!
	for _ in $(seq 1 100); do
		if ping "$port" 2>/dev/null; then
			break 2
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "redis-server did not answer PING on port $port within 10 s; its log ends:"
		tail -n 20 "$dir/server.log" >&2 || true
		exit 1
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
	log "redis-server exited at start on port $port; its log ends:"
	tail -n 5 "$dir/server.log" >&2 || true
	rm -rf "$dir"
	dir=""
	if [ "$attempt" -eq 5 ]; then
		log "redis-server did not start after 5 ports"
		exit 1
	fi
	port=$((port + 1))
done

export INFLEET_TEST_REDIS_ADDR="127.0.0.1:$port"
log "running on $INFLEET_TEST_REDIS_ADDR (persistence off; files in $dir)"
"$@"
