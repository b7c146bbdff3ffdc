#!/usr/bin/env bash
# Runs a command with INFLEET_TEST_CHROMIUM set to a headless-capable Chromium, installed from
# the distribution's packages when absent (see chromium.sh); exits with the command's status.
# The browser tests start and stop their own Chromium processes.
#
#   .ci/peers/with-chromium.sh go test ./cmd/infleet -run TestConsoleInABrowser
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
INFLEET_TEST_CHROMIUM=$("$here/chromium.sh")
export INFLEET_TEST_CHROMIUM
exec "$@"
