#!/usr/bin/env bash
# Runs a command beside throwaway AWS emulators and stops them afterwards, whether the command
# succeeded, failed or was interrupted; exits with the command's status.
#
#   .ci/peers/with-aws.sh go test ./...
#
# fauxqs 1.9.2 serves SQS, SNS and S3 (INFLEET_TEST_AWS_ENDPOINT) and dynalite 4.0.0 serves
# DynamoDB (INFLEET_TEST_DYNAMODB_ENDPOINT). Both are npm packages, installed on first use
# into ${INFLEET_PEERS_DIR:-$HOME/.cache/infleet-peers} (needs node and npm; installed from
# the distribution's packages when absent). When INFLEET_TEST_AWS_ENDPOINT is already set the
# command runs against those endpoints and nothing is started. Logs go to
# ${TMPDIR:-/tmp}/infleet-aws-XXXXXX.log, named when a peer fails.
set -euo pipefail

if [ -n "${INFLEET_TEST_AWS_ENDPOINT:-}" ]; then
	exec "$@"
fi

FAUXQS_VERSION=1.9.2
DYNALITE_VERSION=4.0.0
here=$(cd "$(dirname "$0")" && pwd)
peers=${INFLEET_PEERS_DIR:-$HOME/.cache/infleet-peers}
tmp=${TMPDIR:-/tmp}

log() { echo "aws peers: $*" >&2; }

install() {
	if ! command -v npm >/dev/null 2>&1; then
		log "installing node and npm from the distribution's packages"
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
	fi
	local stamp="$peers/.installed-fauxqs-$FAUXQS_VERSION-dynalite-$DYNALITE_VERSION"
	if [ ! -e "$stamp" ]; then
		log "installing fauxqs@$FAUXQS_VERSION and dynalite@$DYNALITE_VERSION into $peers"
		mkdir -p "$peers"
		npm install --silent --no-audit --no-fund --prefix "$peers" \
			"fauxqs@$FAUXQS_VERSION" "dynalite@$DYNALITE_VERSION" >&2
		touch "$stamp"
	fi
}

# free_port sets port to the first port from $1 up that nothing listens on and no other run
# has claimed (a lock directory under $tmp).
free_port() {
	port=$1
	while :; do
		if mkdir "$tmp/infleet-aws-port-$port" 2>/dev/null; then
			if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				break
			fi
			rmdir "$tmp/infleet-aws-port-$port"
		fi
		port=$((port + 1))
		if [ "$port" -gt $(($1 + 200)) ]; then
			log "no free port in $1-$(($1 + 200)) (stale runs? see $tmp/infleet-aws-port-*)"
			exit 1
		fi
	done
	claimed+=("$tmp/infleet-aws-port-$port")
}

# wait_http url name pid: 0 once url answers, 1 when the process exited first (its log says
# why); a peer that neither answers nor exits within 15 s ends the run.
wait_http() {
	for _ in $(seq 1 150); do
		if curl -s -o /dev/null "$1"; then
			return 0
		fi
		if ! kill -0 "$3" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	log "$2 did not answer at $1 within 15 s; see $log_file"
	exit 1
}

# start_peer name first-port url-path command...: starts command (with PEER_PORT set in its
# arguments by the caller's function) on the first free port from first-port up. A port that
# looked free may still be held by a client socket (it is in the ephemeral range): when the
# peer exits with EADDRINUSE the next port is tried, up to 10 times. Sets port.
start_peer() {
	local name=$1 first=$2 path=$3 launch=$4
	for _ in $(seq 1 10); do
		free_port "$first"
		$launch "$port" >>"$log_file" 2>&1 &
		pids+=($!)
		if wait_http "http://127.0.0.1:$port$path" "$name" "${pids[-1]}"; then
			return 0
		fi
		if ! grep -q EADDRINUSE "$log_file"; then
			log "$name exited at start; see $log_file"
			exit 1
		fi
		log "$name: port $port is taken after all; trying the next one"
		: >"$log_file"
		first=$((port + 1))
	done
	log "$name could not find a port to listen on; see $log_file"
	exit 1
}

# The peers replace their shell (exec): the pid the script stops at the end is the peer itself.
run_fauxqs() { FAUXQS_PORT=$1 FAUXQS_HOST=localhost FAUXQS_LOGGER=false exec node "$peers/node_modules/fauxqs/dist/cli.js"; }
run_dynalite() { DYNALITE_CLI="$peers/node_modules/dynalite/cli.js" exec node "$here/dynalite.js" --port "$1"; }

pids=()
claimed=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	for d in "${claimed[@]}"; do
		rmdir "$d" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install

log_file=$(mktemp --suffix=.log "$tmp/infleet-aws-XXXXXX")
start_peer fauxqs 45660 /health run_fauxqs
fq_port=$port
start_peer dynalite 45860 / run_dynalite
dy_port=$port

export INFLEET_TEST_AWS_ENDPOINT="http://127.0.0.1:$fq_port"
export INFLEET_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$dy_port"
log "fauxqs at $INFLEET_TEST_AWS_ENDPOINT, dynalite at $INFLEET_TEST_DYNAMODB_ENDPOINT"
"$@"
