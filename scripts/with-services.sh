#!/usr/bin/env bash
# Run one command with the test services started for it, and stop them afterwards.
set -uo pipefail
bash scripts/services.sh start || exit 1
trap 'bash scripts/services.sh stop >/dev/null' EXIT
"$@"
