#!/usr/bin/env bash
# Side-by-side load-generator comparison on this machine: gateprobe bench, wrk -t1,
# and oha when it is on PATH, against one nginx worker serving a ~300-byte JSON file
# on 127.0.0.1 (the setup of shared/REFERENCE.md §7).
#
# For each tool: req/s, p50/p99, requests per tool CPU-second (user+sys from
# /usr/bin/time -v), peak RSS, and ratios to wrk. Requests per CPU-second is the
# number to compare when the machine is busy: peak req/s halves under other load,
# efficiency barely moves.
#
# Needs: nginx (Debian nginx-light), wrk, /usr/bin/time, python3.
#   apt-get update && apt-get install -y nginx-light wrk time
#
# Usage: benches/peers.sh                 # 10 s runs, concurrency 50, open loop at 25k/s
#        DURATION=5s RUNS=3 benches/peers.sh
#        LONG=1 benches/peers.sh           # also a 5,000,000-request closed-loop run for peak RSS
# Environment: DURATION (10s), CONC (50), RATE (25000), RUNS (1, median reported),
#              PORT (18089), GATEPROBE (path to the binary; default: cargo build --release).
set -euo pipefail

DURATION=${DURATION:-10s}
CONC=${CONC:-50}
RATE=${RATE:-25000}
RUNS=${RUNS:-1}
PORT=${PORT:-18089}
LONG=${LONG:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in nginx wrk python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx-light wrk)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

if [ -z "${GATEPROBE:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    GATEPROBE="${CARGO_TARGET_DIR:-$ROOT/target}/release/gateprobe"
fi

WORK=$(mktemp -d)
cleanup() {
    if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/www" "$WORK/tmp"
python3 - "$WORK/www/data.json" <<'EOF'
import json, sys
doc = {"id": "chatcmpl-bench", "object": "chat.completion", "model": "mock",
       "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]}
s = json.dumps(doc)
doc["choices"][0]["message"]["content"] = "x" * (300 - len(s) + 1)
open(sys.argv[1], "w").write(json.dumps(doc))
EOF
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    default_type application/json;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/www;
    }
}
EOF
# mktemp makes a 0700 directory; nginx workers run as an unprivileged user.
chmod -R a+rX "$WORK"
nginx -c "$WORK/nginx.conf" -p "$WORK"
URL="http://127.0.0.1:$PORT/data.json"
for _ in $(seq 50); do curl -sf "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL" >/dev/null || { echo "nginx does not serve $URL with 200" >&2; exit 1; }
echo "# target $URL ($(stat -c %s "$WORK/www/data.json") bytes), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# gateprobe $("$GATEPROBE" --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), oha: $(command -v oha >/dev/null && oha --version || echo 'not installed (cargo install oha --locked, about 5 min on 2 cores)')"

# run NAME KIND CMD...: runs under /usr/bin/time -v, appends one JSON line to results.
run() {
    local name=$1 kind=$2; shift 2
    local out="$WORK/out.txt" tim="$WORK/time.txt"
    /usr/bin/time -v -o "$tim" "$@" >"$out" 2>"$WORK/err.txt" || true
    python3 - "$name" "$kind" "$out" "$tim" >>"$WORK/results.jsonl" <<'EOF'
import json, re, sys
name, kind, out, tim = sys.argv[1:5]
text = open(out).read()
t = open(tim).read()
cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t)[1]) + float(re.search(r"System time \(seconds\): ([\d.]+)", t)[1])
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)[1]) / 1024
r = {"tool": name, "kind": kind, "cpu_s": cpu, "rss_mib": rss}
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
if kind == "wrk":
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    r["requests"] = int(re.search(r"(\d+) requests in", text)[1])
    for p in ("50", "99"):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", text)
        r["p" + p] = ms(m[1], m[2])
elif kind == "oha":
    j = json.loads(text)
    s = j["summary"]
    r["rps"] = s["requestsPerSec"]
    r["requests"] = sum(j.get("statusCodeDistribution", {}).values())
    r["p50"] = j["latencyPercentiles"]["p50"] * 1e3
    r["p99"] = j["latencyPercentiles"]["p99"] * 1e3
else:
    j = json.loads(text)
    r["rps"] = j["rps"]
    r["requests"] = j["requests"]
    r["p50"] = j["latency_ms"]["p50"]
    r["p99"] = j["latency_ms"]["p99"]
    r["errors"] = sum(j["errors"].values())
    r["error_classes"] = j["errors"]
    if j.get("schedule_check"):
        r["lag_p99"] = j["schedule_check"]["p99_ms"]
        r["target"] = j["target_rps"]
        r["valid"] = j["valid"]
r["req_per_cpu_s"] = r["requests"] / cpu if cpu > 0 else 0
print(json.dumps(r))
EOF
}

for i in $(seq "$RUNS"); do
    run "gateprobe -c$CONC" closed "$GATEPROBE" bench "$URL" -c "$CONC" -z "$DURATION" --json
    run "wrk -t1 -c$CONC" wrk wrk -t1 -c"$CONC" -d"$DURATION" --latency "$URL"
    if command -v oha >/dev/null; then
        run "oha -c$CONC" oha oha --no-tui -z "$DURATION" -c "$CONC" --output-format json "$URL"
    fi
    run "gateprobe -q$RATE" open "$GATEPROBE" bench "$URL" -c "$CONC" -q "$RATE" -z "$DURATION" --json
    if command -v oha >/dev/null; then
        run "oha -q$RATE" oha oha --no-tui -z "$DURATION" -c "$CONC" -q "$RATE" --latency-correction --output-format json "$URL"
    fi
done
if [ "$LONG" = 1 ]; then
    run "gateprobe -n5M" closed "$GATEPROBE" bench "$URL" -c "$CONC" -n 5000000 --json
fi

python3 - "$WORK/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tools = []
for r in rows:
    if r["tool"] not in tools:
        tools.append(r["tool"])
def med(name, key):
    vals = [r[key] for r in rows if r["tool"] == name and key in r]
    return statistics.median(vals) if vals else None
wrk = next((t for t in tools if t.startswith("wrk")), None)
base_rps, base_eff = (med(wrk, "rps"), med(wrk, "req_per_cpu_s")) if wrk else (None, None)
print(f"{'tool':<18} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'req/CPU-s':>10} {'RSS MiB':>8} {'rps/wrk':>8} {'eff/wrk':>8}  notes")
for t in tools:
    rps, p50, p99, eff, rss = (med(t, k) for k in ("rps", "p50", "p99", "req_per_cpu_s", "rss_mib"))
    notes = []
    lag = med(t, "lag_p99")
    if lag is not None:
        target = med(t, "target")
        notes.append(f"target {target:.0f}/s, achieved {100 * rps / target:.3f}%, lag p99 {lag:.3f} ms")
    errs = med(t, "errors")
    if errs:
        notes.append(f"errors {errs:.0f}")
    ratio = lambda a, b: f"{a / b:8.2f}" if a and b else f"{'-':>8}"
    print(f"{t:<18} {rps:9.0f} {p50:7.3f} {p99:7.3f} {eff:10.0f} {rss:8.1f} {ratio(rps, base_rps)} {ratio(eff, base_eff)}  {'; '.join(notes)}")
print(f"# {len([r for r in rows if r['tool'] == tools[0]])} run(s) per tool, median shown")
EOF
