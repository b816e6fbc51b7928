#!/usr/bin/env bash
# Start the services, check the import contract, run the whole suite, stop the services.
set -uo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
export PYTHON
bin=$(dirname "$PYTHON")

bash scripts/services.sh start || exit 1
trap 'bash scripts/services.sh stop >/dev/null' EXIT

"$bin/ruff" check --quiet . || exit 1
"$bin/lint-imports" || exit 1

"$PYTHON" -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
