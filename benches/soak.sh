#!/usr/bin/env bash
# Soak: runs scenarios/soak.yaml (a steady open-loop rate of streamed chat through the
# built-in gateway and a vLLM mock, all in the one gateprobe process) and samples that
# process from /proc every SAMPLE seconds: resident memory (VmRSS), open file
# descriptors and threads. Prints the samples, then RSS growth from the end of warm-up
# (first sample at or after WARM seconds) to the end, and the fd range.
# Pass: RSS growth under 5%, and fds in the last third of the run never all above the
# first third's peak (connections come and go with the requests in flight).
# Bounded: the scenario stops by itself.
#
# Usage: benches/soak.sh
# Environment: SOAK_DURATION (10m), SOAK_RATE (100 req/s), SAMPLE (10 s), WARM (60 s),
#              GATEPROBE (a built binary; default: cargo build --release)
set -euo pipefail
DURATION=${SOAK_DURATION:-10m}
RATE=${SOAK_RATE:-100}
SAMPLE=${SAMPLE:-10}
WARM=${WARM:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${GATEPROBE:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    GATEPROBE="${CARGO_TARGET_DIR:-$ROOT/target}/release/gateprobe"
fi
WORK=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
sed -e "s/^    duration: .*/    duration: $DURATION/" -e "s/^    open: {rate: .*}/    open: {rate: $RATE}/" \
    "$ROOT/scenarios/soak.yaml" >"$WORK/soak.yaml"
CI=1 "$GATEPROBE" run "$WORK/soak.yaml" --report-dir "$WORK/reports" >"$WORK/out.log" 2>&1 &
PID=$!
start=$(date +%s)
echo "seconds,rss_kib,fds,threads" | tee "$WORK/samples.csv"
while kill -0 "$PID" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
    threads=$(awk '/^Threads/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
    fds=$(ls "/proc/$PID/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss,$fds,$threads" | tee -a "$WORK/samples.csv"
    sleep "$SAMPLE"
done
wait "$PID" && code=0 || code=$?
PID=
tail -n 8 "$WORK/out.log"
echo "gateprobe exit code: $code"
python3 - "$WORK/samples.csv" "$WARM" <<'PY'
import csv, sys
rows = [tuple(int(x) for x in r.values()) for r in csv.DictReader(open(sys.argv[1]))]
warm = int(sys.argv[2])
after = [r for r in rows if r[0] >= warm] or rows[-1:]
base, last = after[0], after[-1]
peak = max(r[1] for r in after)
growth = (last[1] - base[1]) / base[1] * 100
fds = [r[2] for r in after]
# A leak climbs and stays up: the last third never drops to what the first third
# reached. Open connections move with the requests in flight.
third = max(1, len(fds) // 3)
leaking = min(fds[-third:]) > max(fds[:third])
print(f"samples: {len(rows)} over {rows[-1][0]} s")
print(f"RSS after warm-up ({base[0]} s): {base[1]/1024:.1f} MiB; at the end ({last[0]} s): {last[1]/1024:.1f} MiB; "
      f"peak {peak/1024:.1f} MiB; growth {growth:+.2f}% ({'ok' if growth < 5 else 'OVER 5%'})")
print(f"open fds after warm-up: min {min(fds)} max {max(fds)} first {fds[0]} last {fds[-1]}; "
      f"last third min {min(fds[-third:])} vs first third max {max(fds[:third])} ({'GROWING' if leaking else 'ok'})")
PY
