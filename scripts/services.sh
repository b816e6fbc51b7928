#!/usr/bin/env bash
# Start or stop the services the tests use, each on a free 127.0.0.1 port:
# Redis, FerretDB (SQLite backend) or mongod when one is on PATH, and stripe-mock.
# `start` writes their URLs to $SERVICES_DIR/env for the tests to read.
set -euo pipefail

SERVICES_DIR=${SERVICES_DIR:-.services}
TOOLS_DIR=${TOOLS_DIR:-.tools}
PYTHON=${PYTHON:-python3}
export DO_NOT_TRACK=1

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {
    local name=$1 port=$2
    for _ in $(seq 1 100); do
        if "$PYTHON" -c "import socket, sys; s = socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "services: $name did not open port $port; see $SERVICES_DIR/$name.log" >&2
    return 1
}

start_detached() {
    local name=$1
    shift
    nohup "$@" >"$SERVICES_DIR/$name.log" 2>&1 &
    echo $! >"$SERVICES_DIR/$name.pid"
}

start() {
    if [ -f "$SERVICES_DIR/env" ]; then
        stop
    fi
    mkdir -p "$SERVICES_DIR/redis" "$SERVICES_DIR/mongo"
    local dir
    dir=$(cd "$SERVICES_DIR" && pwd)

    local redis_port
    redis_port=$(free_port)
    # appendonly keeps accepted jobs across a Redis restart.
    start_detached redis redis-server --bind 127.0.0.1 --port "$redis_port" \
        --dir "$dir/redis" --save "" --appendonly yes --daemonize no
    wait_for_port redis "$redis_port"

    local mongo_port
    mongo_port=$(free_port)
    if command -v mongod >/dev/null 2>&1; then
        start_detached mongo mongod --bind_ip 127.0.0.1 --port "$mongo_port" --dbpath "$dir/mongo"
    else
        local debug_port
        debug_port=$(free_port)
        # _txlock=immediate: a write transaction takes SQLite's write lock when it begins, so concurrent
        # writers wait (busy_timeout) instead of failing with SQLITE_BUSY when a read turns into a write.
        start_detached mongo "$TOOLS_DIR/ferretdb" --handler=sqlite \
            --sqlite-url="file:$dir/mongo/?_txlock=immediate" --state-dir="$dir/mongo" \
            --listen-addr="127.0.0.1:$mongo_port" --debug-addr="127.0.0.1:$debug_port" \
            --telemetry=disable --log-level=warn
    fi
    wait_for_port mongo "$mongo_port"

    local stripe_port
    stripe_port=$(free_port)
    # stripe-mock also serves HTTPS on all interfaces unless given an address, so HTTPS gets a Unix socket.
    start_detached stripe-mock "$TOOLS_DIR/stripe-mock" -http-addr "127.0.0.1:$stripe_port" \
        -https-unix "$dir/stripe-mock-https.sock"
    wait_for_port stripe-mock "$stripe_port"

    cat >"$SERVICES_DIR/env" <<ENV
REDIS_URL=redis://127.0.0.1:$redis_port/0
MONGODB_URL=mongodb://127.0.0.1:$mongo_port/
STRIPE_API_BASE=http://127.0.0.1:$stripe_port
ENV
    echo "services: Redis on 127.0.0.1:$redis_port, MongoDB wire protocol on 127.0.0.1:$mongo_port," \
        "stripe-mock on 127.0.0.1:$stripe_port"
}

stop() {
    for name in stripe-mock mongo redis; do
        local pidfile="$SERVICES_DIR/$name.pid"
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    rm -rf "$SERVICES_DIR"
    echo "services: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
