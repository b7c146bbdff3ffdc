#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL server for infleet's tests.
#
#   .ci/peers/postgres.sh start   # prints the DSN on stdout
#   .ci/peers/postgres.sh stop
#
# start installs PostgreSQL from the distribution's packages when no server binary is found,
# creates a fresh cluster in a temporary directory owned by the postgres user (trust auth,
# 127.0.0.1 only, unix socket in that directory), starts it and creates the database
# infleet_test. Running start again while the server runs prints the same DSN. stop stops the
# server and removes its directory; stopping a stopped peer is not an error.
#
# Settings (environment): INFLEET_PG_PORT (default 55432), INFLEET_PG_DIR (default
# ${TMPDIR:-/tmp}/infleet-pg-$PORT), INFLEET_PG_DURABLE=1 to keep fsync and synchronous commit
# on (for benchmarks; tests run faster without). Logs go to stderr and $INFLEET_PG_DIR/server.log.
set -euo pipefail

port=${INFLEET_PG_PORT:-55432}
dir=${INFLEET_PG_DIR:-${TMPDIR:-/tmp}/infleet-pg-$port}
db=infleet_test
dsn="postgres://postgres@127.0.0.1:$port/$db?sslmode=disable"

log() { echo "postgres peer: $*" >&2; }

# as_postgres runs a server command as the postgres user when we are root (initdb refuses to
# run as root), else as ourselves: the cluster's superuser is named postgres either way.
as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

find_bin() {
	local b
	b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$b" ] && [ -x "$b/postgres" ]; then
		echo "$b"
	fi
}

install_server() {
	if [ "$(id -u)" -ne 0 ]; then
		log "PostgreSQL is not installed and we are not root: install the postgresql package"
		exit 1
	fi
	log "installing PostgreSQL with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
}

# running reports whether our server answers; a pid file alone may outlive a killed server.
running() {
	[ -f "$dir/data/postmaster.pid" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d "$db" -U postgres -t 2
}

start() {
	bin=$(find_bin)
	if [ -z "$bin" ]; then
		install_server
		bin=$(find_bin)
		[ -n "$bin" ] || { log "no server under /usr/lib/postgresql/*/bin after installing"; exit 1; }
	fi
	if running; then
		echo "$dsn"
		return
	fi
	# A directory left by a crashed run is not trusted: stop what may be left of its server
	# and start from a fresh cluster.
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres:postgres "$dir"
	fi
	chmod 700 "$dir"
	as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
		--no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	# fsync off by default: the cluster is thrown away after the tests, and it keeps them fast.
	local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if [ "${INFLEET_PG_DURABLE:-}" = 1 ]; then
		durability="-c fsync=on -c synchronous_commit=on"
	fi
	as_postgres "$bin/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/server.log" \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=200" \
		start >&2 || { cat "$dir/server.log" >&2; exit 1; }
	as_postgres "$bin/createdb" -h "$dir" -p "$port" -U postgres "$db"
	log "running on 127.0.0.1:$port (data in $dir)"
	echo "$dsn"
}

stop() {
	bin=$(find_bin)
	if [ -n "$bin" ] && [ -d "$dir/data" ]; then
		as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >&2 2>/dev/null || true
	fi
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
