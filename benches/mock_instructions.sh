#!/usr/bin/env bash
# Instructions the vLLM mock spends per non-streaming chat completion, counted by
# callgrind: repeatable whatever else the machine is doing, unlike req/s.
#
# The mock runs under `valgrind --tool=callgrind` and serves N1 then, in a second run,
# N2 requests from `gateprobe bench`; (I(N2) - I(N1)) / (N2 - N1) cancels start-up.
# Compare two builds by setting GATEPROBE to each in turn.
#
# Needs: valgrind.   apt-get install -y valgrind
# Usage: benches/mock_instructions.sh
# Environment: GATEPROBE (default: cargo build --release), N1 (1000), N2 (3000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N1=${N1:-1000}
N2=${N2:-3000}
command -v valgrind >/dev/null || { echo "missing valgrind (apt-get install -y valgrind)" >&2; exit 1; }
if [ -z "${GATEPROBE:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    GATEPROBE="${CARGO_TARGET_DIR:-$ROOT/target}/release/gateprobe"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf 'backends:\n  vllm:\n    provider: openai\n    models: [m]\n' >"$WORK/mock.yaml"
echo '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}' >"$WORK/body.json"

# Total instructions of a mock that served $1 requests.
instructions() {
    local out="$WORK/callgrind.$1"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$GATEPROBE" mock "$WORK/mock.yaml" --threads 1 --foreground \
        >"$WORK/mock.env" 2>"$WORK/valgrind.log" &
    local pid=$!
    for _ in $(seq 300); do grep -q '^# vllm' "$WORK/mock.env" 2>/dev/null && break; sleep 0.1; done
    local url
    url=$(awk '/^# vllm/ {print $4}' "$WORK/mock.env")
    "$GATEPROBE" bench "$url/v1/chat/completions" -m POST -H 'content-type: application/json' \
        --body "$WORK/body.json" -c 4 -n "$1" --json >/dev/null
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^summary:/ {print $2}' "$out"*
}
I1=$(instructions "$N1")
I2=$(instructions "$N2")
python3 -c "print(f'{($I2 - $I1) / ($N2 - $N1):,.0f} instructions per request ({$N1}: {$I1:,}, {$N2}: {$I2:,})')"
