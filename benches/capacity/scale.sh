#!/usr/bin/env bash
# How many concurrent token streams one vLLM mock and gateprobe hold together on this
# machine while the inter-token latency gateprobe measures stays within 2 ms of the
# mock's model (ITL 20 ms, 200 tokens a stream): one `gateprobe run` process serves the
# mock (its own 2-thread runtime) and drives N closed-loop clients (2 threads) straight
# at it, streaming chat completions, for DURATION after a warm-up. Prints, per N, the
# measured ITL and TTFT, throughput, the process's peak RSS and RSS per stream.
#
#   benches/capacity/scale.sh                              # N = 500 1000 2000 3000 4000 5000
#   STREAMS="1000 6000" DURATION=30s benches/capacity/scale.sh
# GATEPROBE: a built binary (default: cargo build --release).
#
# First it prints the kernel's floor (benches/tcp_floor.rs): what one token-sized
# loopback TCP segment costs before any HTTP or JSON, and so how many streams the
# machine's cores could carry at ITL 20 ms with no user-space work at all
# (FLOOR=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Each stream holds one connection at each end (client and mock): 2 descriptors in
# the one process. Raise the soft limit as far as the hard one allows (65536 where
# permitted; a container may cap the hard limit: 20000 on the machine measured).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n)"
STREAMS=${STREAMS:-"500 1000 2000 3000 4000 5000"}
DURATION=${DURATION:-20s}
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
printf '| streams | requests | errors | ITL p50 | ITL p99 | p99 within 2 ms | TTFT p50 | TTFT p99 | output tokens/s | CPU-s | peak RSS | RSS per stream |\n'
printf '|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|\n'
base_rss=""
for n in $STREAMS; do
  cat > "$out/scale-$n.yaml" <<YAML
gateway: {kind: direct, timeout: 60s}
backends:
  vllm:
    provider: openai
    models: [m]
    timing: {ttft: 20ms, itl: 20ms, tokens: max_tokens}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", identifier: custom_openai/m}
checks: []
load:
  - name: scale
    feature: duo_chat
    stream: true
    closed: {clients: $n}
    warmup: 5s
    duration: $DURATION
    workload: {prompt_tokens: 64, output_tokens: 200, history_turns: 0}
YAML
  /usr/bin/time -f '%M %U %S' -o "$out/time-$n" "$GATEPROBE" run "$out/scale-$n.yaml" \
    --report-dir "$out/$n" >/dev/null 2>"$out/stderr-$n" || true
  python3 - "$out" "$n" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
rss_kib, user, sys_ = open(f"{out}/time-{n}").read().split()[-3:]
rss = int(rss_kib) / 1024
try:
    p = json.load(open(f"{out}/{n}/gateprobe.json"))["load"][0]
except (OSError, IndexError, KeyError) as e:
    print(f"| {n} | run failed: {e} |")
    sys.exit()
h = p["llm"]["histograms"]
ok = "yes" if h["itl"]["p99"] <= 22.0 else "NO"
errors = sum(p["transport"]["errors"].values())
print(f"| {n} | {p['transport']['requests']} | {errors} | {h['itl']['p50']:.2f} ms | {h['itl']['p99']:.2f} ms | {ok} "
      f"| {h['ttft']['p50']:.1f} ms | {h['ttft']['p99']:.1f} ms | {p['output_tokens_per_s']:.0f} "
      f"| {float(user) + float(sys_):.1f} | {rss:.0f} MiB | {rss * 1024 / n:.0f} KiB |")
PY
done
