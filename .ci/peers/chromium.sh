#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for infleet's browser tests, installing
# Debian's chromium package with apt-get when none is found (as postgres.sh installs
# PostgreSQL). INFLEET_TEST_CHROMIUM, when set to an executable, is used as it is.
#
#   .ci/peers/chromium.sh          # prints e.g. /usr/bin/chromium
set -euo pipefail

log() { echo "chromium peer: $*" >&2; }

if [ -n "${INFLEET_TEST_CHROMIUM:-}" ] && [ -x "$INFLEET_TEST_CHROMIUM" ]; then
	echo "$INFLEET_TEST_CHROMIUM"
	exit 0
fi
for b in /usr/bin/chromium /usr/bin/chromium-browser; do
	if [ -x "$b" ]; then
		echo "$b"
		exit 0
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	log "Chromium is not installed and we are not root: install the chromium package"
	exit 1
fi
log "installing Chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
echo /usr/bin/chromium
