#!/usr/bin/env bash
# Install what the test services need: Debian's redis-server and tesseract-ocr,
# and FerretDB v1.24.2 and stripe-mock built from the Go module proxy into $TOOLS_DIR.
set -euo pipefail

TOOLS_DIR=${TOOLS_DIR:-.tools}
FERRETDB_VERSION=v1.24.2
STRIPE_MOCK_VERSION=v0.203.0
mkdir -p "$TOOLS_DIR"
TOOLS_DIR=$(cd "$TOOLS_DIR" && pwd)

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
if [ ${#missing[@]} -gt 0 ]; then
    echo "tools: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# stripe-mock serves the Stripe API to the billing tests. The version is pinned because
# the tests read values from its fixed responses.
stripe_mock="$TOOLS_DIR/stripe-mock"
if [ ! -x "$stripe_mock" ]; then
    echo "tools: building stripe-mock $STRIPE_MOCK_VERSION into $TOOLS_DIR"
    GOBIN="$TOOLS_DIR" go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
fi

if command -v mongod >/dev/null 2>&1; then
    echo "tools: mongod found on PATH, FerretDB is not needed"
    exit 0
fi

ferretdb="$TOOLS_DIR/ferretdb"
# The version output is read whole before matching: with pipefail, `grep -q` or `head` closing
# the pipe early makes the pipeline fail with SIGPIPE (status 141).
if [ -x "$ferretdb" ] && [[ "$("$ferretdb" --version 2>/dev/null)" == *"$FERRETDB_VERSION"* ]]; then
    exit 0
fi

echo "tools: building FerretDB $FERRETDB_VERSION into $TOOLS_DIR"
# `go install ...@v1.24.2` gives a binary that panics at start because the
# module ships an empty build/version/version.txt, so build from a copy of the
# module source with that file filled in.
src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
work="$TOOLS_DIR/ferretdb-src"
rm -rf "$work"
cp -r "$src" "$work"
chmod -R u+w "$work"
echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
(cd "$work" && go build -o "$ferretdb" ./cmd/ferretdb)
rm -rf "$work"
version_output=$("$ferretdb" --version)
echo "${version_output%%$'\n'*}"
