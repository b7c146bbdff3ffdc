#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server and INFLEET_TEST_POSTGRES_DSN set to it,
# then stops the server, whether the command succeeded, failed or was interrupted; exits with
# the command's status.
#
#   .ci/peers/with-postgres.sh go test ./...
#
# When INFLEET_TEST_POSTGRES_DSN is already set, the command runs against that server and
# nothing is started. Otherwise the server gets the first port from 55432 up that is neither
# listening nor used by another run's directory, so concurrent runs do not share a server.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${INFLEET_TEST_POSTGRES_DSN:-}" ]; then
	exec "$@"
fi

# A port that nothing listens on may still be held by a client socket (the ephemeral range
# covers it), so a failed start moves on to the next port.
free_port() {
	while [ -e "${TMPDIR:-/tmp}/infleet-pg-$port" ] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
		if [ "$port" -gt 55532 ]; then
			echo "with-postgres: no free port in 55432-55532 (stale runs? see ${TMPDIR:-/tmp}/infleet-pg-*)" >&2
			exit 1
		fi
	done
}

trap '"$here/postgres.sh" stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
port=55432
for attempt in 1 2 3 4 5; do
	free_port
	export INFLEET_PG_PORT=$port
	if INFLEET_TEST_POSTGRES_DSN=$("$here/postgres.sh" start); then
		break
	fi
	"$here/postgres.sh" stop >/dev/null 2>&1 || true
	if [ "$attempt" -eq 5 ]; then
		echo "with-postgres: PostgreSQL did not start after 5 ports; see the log above" >&2
		exit 1
	fi
	echo "with-postgres: port $port refused; trying the next one" >&2
	port=$((port + 1))
done
export INFLEET_TEST_POSTGRES_DSN
"$@"
