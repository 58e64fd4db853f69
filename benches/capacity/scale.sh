#!/usr/bin/env bash
# How many concurrent token streams one vLLM mock and gateprobe hold together on this
# machine while the inter-token latency gateprobe measures stays within 2 ms of the
# mock's model (ITL 20 ms, 200 tokens a stream): one `gateprobe run` process serves the
# mock (its own 2-thread runtime) and drives N closed-loop clients (2 threads) straight
# at it, streaming chat completions, for DURATION after a warm-up. Prints, per N, the
# measured ITL and TTFT, throughput, CPU per streamed token, the process's peak RSS
# and RSS per stream.
#
#   benches/capacity/scale.sh                              # N = 500 1000 2000 3000 4000 5000
#   STREAMS="1000 6000" DURATION=30s benches/capacity/scale.sh
#   SPLIT=1 STREAMS="1000 2000" benches/capacity/scale.sh  # mock in a process of its own
# GATEPROBE: a built binary (default: cargo build --release).
#
# SPLIT=1 serves the mock from a separate `gateprobe mock` process (port SPLIT_PORT,
# default 18555) and reports each process's CPU per token and RSS: what gateprobe
# itself costs when the model server runs elsewhere.
#
# First it prints the kernel's floor (benches/tcp_floor.rs): what one token-sized
# loopback TCP segment costs before any HTTP or JSON, and so how many streams the
# machine's cores could carry at ITL 20 ms with no user-space work at all
# (FLOOR=0 skips it).
#
# CPU per token is the process's CPU time over every token it streamed, warm-up
# included (the measured rate times warm-up plus duration).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Each stream holds one connection at each end (client and mock): 2 descriptors in
# the one process. Raise the soft limit as far as the hard one allows (65536 where
# permitted; a container may cap the hard limit: 20000 on the machine measured).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n)"
STREAMS=${STREAMS:-"500 1000 2000 3000 4000 5000"}
DURATION=${DURATION:-20s}
WARMUP=5s
SPLIT=${SPLIT:-0}
SPLIT_PORT=${SPLIT_PORT:-18555}
if [ -z "${GATEPROBE:-}" ]; then
  cargo build --release -q
  GATEPROBE=./target/release/gateprobe
fi
if [ "${FLOOR:-1}" != 0 ]; then
  cargo bench -q --bench tcp_floor 2>/dev/null
  echo
fi
out=$(mktemp -d)
echo "reports in $out"
if [ "$SPLIT" = 1 ]; then
  printf '| streams | errors | ITL p50 | ITL p99 | p99 within 2 ms | TTFT p99 | output tokens/s | gateprobe CPU per token | mock CPU per token | gateprobe RSS | mock RSS |\n'
  printf '|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|\n'
  cat > "$out/mock.yaml" <<YAML
backends:
  vllm:
    provider: openai
    port: $SPLIT_PORT
    models: [m]
    timing: {ttft: 20ms, itl: 20ms, tokens: max_tokens}
YAML
  backends=""
  endpoint="http://127.0.0.1:$SPLIT_PORT/v1"
else
  printf '| streams | requests | errors | ITL p50 | ITL p99 | p99 within 2 ms | TTFT p50 | TTFT p99 | output tokens/s | CPU-s | CPU per token | peak RSS | RSS per stream |\n'
  printf '|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|\n'
  backends='backends:
  vllm:
    provider: openai
    models: [m]
    timing: {ttft: 20ms, itl: 20ms, tokens: max_tokens}'
  endpoint="{{ backends.vllm.url }}/v1"
fi
for n in $STREAMS; do
  cat > "$out/scale-$n.yaml" <<YAML
gateway: {kind: direct, timeout: 60s}
$backends
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "$endpoint", identifier: custom_openai/m}
checks: []
load:
  - name: scale
    feature: duo_chat
    stream: true
    closed: {clients: $n}
    warmup: $WARMUP
    duration: $DURATION
    workload: {prompt_tokens: 64, output_tokens: 200, history_turns: 0}
YAML
  mock_pid=""
  if [ "$SPLIT" = 1 ]; then
    /usr/bin/time -f '%M %U %S' -o "$out/mock-time-$n" "$GATEPROBE" mock "$out/mock.yaml" \
      --foreground --for 30m >"$out/mock-$n.log" 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do
      grep -q "GATEPROBE_BACKEND_VLLM_URL" "$out/mock-$n.log" 2>/dev/null && break
      sleep 0.1
    done
  fi
  /usr/bin/time -f '%M %U %S' -o "$out/time-$n" "$GATEPROBE" run "$out/scale-$n.yaml" \
    --report-dir "$out/$n" >/dev/null 2>"$out/stderr-$n" || true
  if [ -n "$mock_pid" ]; then
    # GNU time ignores SIGINT while it waits: stop the mock under it.
    pkill -INT -P "$mock_pid" || true
    wait "$mock_pid" || true
  fi
  python3 - "$out" "$n" "$SPLIT" "$WARMUP" "$DURATION" <<'PY'
import json, sys
out, n, split = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
seconds = sum(float(a.rstrip("s")) for a in sys.argv[4:6])
def usage(path):
    rss_kib, user, sys_ = open(path).read().split()[-3:]
    return int(rss_kib) / 1024, float(user) + float(sys_)
rss, cpu = usage(f"{out}/time-{n}")
try:
    p = json.load(open(f"{out}/{n}/gateprobe.json"))["load"][0]
except (OSError, IndexError, KeyError) as e:
    print(f"| {n} | run failed: {e} |")
    sys.exit()
h = p["llm"]["histograms"]
ok = "yes" if h["itl"]["p99"] <= 22.0 else "NO"
errors = sum(p["transport"]["errors"].values())
streamed = max(p["output_tokens_per_s"] * seconds, 1)
per_token = lambda c: f"{c / streamed * 1e6:.1f} µs"
if split:
    mock_rss, mock_cpu = usage(f"{out}/mock-time-{n}")
    print(f"| {n} | {errors} | {h['itl']['p50']:.2f} ms | {h['itl']['p99']:.2f} ms | {ok} "
          f"| {h['ttft']['p99']:.1f} ms | {p['output_tokens_per_s']:.0f} | {per_token(cpu)} | {per_token(mock_cpu)} "
          f"| {rss:.0f} MiB | {mock_rss:.0f} MiB |")
else:
    print(f"| {n} | {p['transport']['requests']} | {errors} | {h['itl']['p50']:.2f} ms | {h['itl']['p99']:.2f} ms | {ok} "
          f"| {h['ttft']['p50']:.1f} ms | {h['ttft']['p99']:.1f} ms | {p['output_tokens_per_s']:.0f} "
          f"| {cpu:.1f} | {per_token(cpu)} | {rss:.0f} MiB | {rss * 1024 / n:.0f} KiB |")
PY
done
