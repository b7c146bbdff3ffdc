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

port=55432
while [ -e "${TMPDIR:-/tmp}/infleet-pg-$port" ] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
	port=$((port + 1))
	if [ "$port" -gt 55532 ]; then
		echo "with-postgres: no free port in 55432-55532 (stale runs? see ${TMPDIR:-/tmp}/infleet-pg-*)" >&2
		exit 1
	fi
done
export INFLEET_PG_PORT=$port

trap '"$here/postgres.sh" stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
INFLEET_TEST_POSTGRES_DSN=$("$here/postgres.sh" start)
export INFLEET_TEST_POSTGRES_DSN
"$@"
