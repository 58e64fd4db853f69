#!/usr/bin/env bash
# Is the vLLM mock ever the bottleneck? Non-streaming chat completions from the mock
# (instant timing) against nginx serving a ~300-byte JSON file, both driven by
# `gateprobe bench` at the same concurrency, side by side in one run. Prints req/s of
# each and the ratio (floor: the mock at >= 0.7x nginx).
#
# Needs: nginx (Debian nginx-light), python3.   apt-get install -y nginx-light
# One nginx worker process against one mock thread (`gateprobe mock --threads 1`), so the
# generator has the other core in both runs; RUNS rounds alternate the two and the
# median ratio is printed.
# Usage: benches/mock_vs_nginx.sh
# Environment: DURATION (10s), CONC (50), PORT (18090), RUNS (3), MOCK_THREADS (1)
set -euo pipefail
DURATION=${DURATION:-10s}
CONC=${CONC:-50}
RUNS=${RUNS:-3}
MOCK_THREADS=${MOCK_THREADS:-1}
PORT=${PORT:-18090}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v nginx >/dev/null || { echo "missing nginx (apt-get install -y nginx-light)" >&2; exit 1; }
if [ -z "${GATEPROBE:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    GATEPROBE="${CARGO_TARGET_DIR:-$ROOT/target}/release/gateprobe"
fi
WORK=$(mktemp -d)
MOCK_PID=
cleanup() {
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/www" "$WORK/tmp"
python3 -c 'import json; print(json.dumps({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"x"*200},"finish_reason":"stop"}]}))' >"$WORK/www/data.json"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
    access_log off; tcp_nodelay on; keepalive_requests 10000000;
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    server { listen 127.0.0.1:$PORT; root $WORK/www; }
}
CONF
chmod -R a+rX "$WORK"   # nginx workers run unprivileged
nginx -c "$WORK/nginx.conf"
printf 'backends:\n  vllm:\n    provider: openai\n    models: [m]\n' >"$WORK/mock.yaml"
"$GATEPROBE" mock "$WORK/mock.yaml" --threads "$MOCK_THREADS" --foreground >"$WORK/mock.env" &
MOCK_PID=$!
for _ in $(seq 50); do grep -q '^# vllm' "$WORK/mock.env" 2>/dev/null && break; sleep 0.1; done
MOCK_URL=$(awk '/^# vllm/ {print $4}' "$WORK/mock.env")
echo '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}' >"$WORK/body.json"

rps() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))'; }
ratios=()
for run in $(seq "$RUNS"); do
    NGINX=$("$GATEPROBE" bench "http://127.0.0.1:$PORT/data.json" -c "$CONC" -z "$DURATION" --json | rps)
    MOCK=$("$GATEPROBE" bench "$MOCK_URL/v1/chat/completions" -m POST -H 'content-type: application/json' \
        --body "$WORK/body.json" -c "$CONC" -z "$DURATION" --json | rps)
    ratio=$(python3 -c "print(f'{$MOCK / $NGINX:.2f}')")
    printf 'run %s: nginx static file %8s req/s   vLLM mock chat (no stream, %s thread) %8s req/s   ratio %s\n' \
        "$run" "$NGINX" "$MOCK_THREADS" "$MOCK" "$ratio"
    ratios+=("$ratio")
done
python3 -c "
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print(f'median ratio mock/nginx {statistics.median(r):.2f} over {len(r)} runs (floor 0.70)')
" "${ratios[@]}"
