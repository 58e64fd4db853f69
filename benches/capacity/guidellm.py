#!/usr/bin/env python3
"""gateprobe and GuideLLM side by side on one vLLM mock, with the same workload.

Starts `gateprobe mock benches/capacity/mock.yaml` (100 ms to the first token plus
0.1 ms per prompt token, 20 ms per token, answers as long as `max_tokens` asks), then
runs each client in turn against it: STREAMS concurrent streams, REQUESTS requests of
PROMPT prompt tokens and OUTPUT output tokens (forced with `ignore_eos`). Prints TTFT,
ITL, TPOT and request latency per percentile, throughput, and each client's CPU-seconds
(user + sys of its process, from wait4) per 1,000 streamed requests, with and without
its start-up (a 1-request run of each is measured and subtracted).

    python3 benches/capacity/guidellm.py                 # 50 streams, 1000 requests
    STREAMS=100 REQUESTS=2000 python3 benches/capacity/guidellm.py
    GATEPROBE=target/release/gateprobe python3 benches/capacity/guidellm.py   # no build

GuideLLM comes from a virtual environment under ~/.cache/gateprobe (created with
`pip install guidellm==0.8.1` when missing, ~6 GB with torch) and loads the local
tokenizer in benches/capacity/tokenizer offline: one WordLevel token per
whitespace-separated word ("tok"), so its prompts of N tokens are 4N-1 characters,
which the mock (4 characters per token) counts as N, like gateprobe's own.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STREAMS = int(os.environ.get("STREAMS", 50))
REQUESTS = int(os.environ.get("REQUESTS", 1000))
PROMPT = int(os.environ.get("PROMPT", 256))
OUTPUT = int(os.environ.get("OUTPUT", 200))
VENV = os.environ.get("GUIDELLM_VENV", os.path.expanduser("~/.cache/gateprobe/guidellm-venv"))
# A built binary, or none to build one with cargo.
GATEPROBE = os.environ.get("GATEPROBE") or os.path.join(ROOT, "target", "release", "gateprobe")
URL = "http://127.0.0.1:18555"

SCENARIO = """
gateway: {{kind: direct, timeout: 120s}}
self_hosted_models:
  - {{name: m, family: mixtral, endpoint: "{url}/v1", identifier: custom_openai/m}}
checks: []
load:
  - name: twin
    feature: duo_chat
    stream: true
    closed: {{clients: {streams}}}
    requests: {requests}
    workload: {{prompt_tokens: {prompt}, output_tokens: {output}, history_turns: 0}}
"""


def run(cmd, env=None):
    """Runs cmd; returns its CPU seconds (user + sys) and wall seconds."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) not in (0,):
        sys.exit(f"{cmd[0]} failed ({os.waitstatus_to_exitcode(status)}):\n{err[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024


def gateprobe(work, requests, streams):
    path = os.path.join(work, f"gp-{requests}.yaml")
    with open(path, "w") as f:
        f.write(SCENARIO.format(url=URL, streams=streams, requests=requests, prompt=PROMPT, output=OUTPUT))
    out = os.path.join(work, f"gp-{requests}")
    cpu, wall, rss = run([GATEPROBE, "run", path, "--report-dir", out])
    with open(os.path.join(out, "gateprobe.json")) as f:
        p = json.load(f)["load"][0]
    h = p["llm"]["histograms"]
    pick = lambda s: {q: s[q] for q in ("p50", "p90", "p99")}
    return {
        "cpu": cpu, "wall": wall, "rss": rss,
        "ttft": pick(h["ttft"]), "itl": pick(h["itl"]), "tpot": pick(h["tpot"]),
        "latency": pick(p["transport"]["service_ms"]),
        "rps": p["rps"], "tokens_per_s": p["output_tokens_per_s"],
        "requests": p["transport"]["requests"], "errors": sum(p["transport"]["errors"].values()),
        "prompt_tokens": p["llm"]["tokens"]["prompt_usage"]["p50"],
        "output_tokens": p["llm"]["tokens"]["output_usage"]["p50"],
    }


def guidellm(work, requests, streams):
    out = os.path.join(work, f"gl-{requests}.json")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GUIDELLM__LOGGING__DISABLED="true")
    cpu, wall, rss = run([
        os.path.join(VENV, "bin", "guidellm"), "run",
        "--backend", f"kind=openai_http,target={URL},model=m",
        "--tokenizer", f"kind=huggingface_auto,model={os.path.join(ROOT, 'benches/capacity/tokenizer')}",
        "--data", f"kind=synthetic_text,prompt_tokens={PROMPT},output_tokens={OUTPUT}",
        "--profile", f"kind=concurrent,streams={streams}",
        "--constraint", f"kind=max_requests,count={requests}",
        "--output", f"kind=json,path={out}",
        "--disable-console",
    ], env=env)
    with open(out) as f:
        m = json.load(f)["benchmarks"][0]["metrics"]
    pick = lambda k, scale=1.0: {q: m[k]["successful"]["percentiles"][q] * scale for q in ("p50", "p90", "p99")}
    return {
        "cpu": cpu, "wall": wall, "rss": rss,
        "ttft": pick("time_to_first_token_ms"), "itl": pick("inter_token_latency_ms"),
        "tpot": pick("time_per_output_token_ms"), "latency": pick("request_latency", 1000.0),
        "rps": m["requests_per_second"]["successful"]["mean"],
        "tokens_per_s": m["output_tokens_per_second"]["successful"]["mean"],
        "requests": m["request_totals"]["successful"], "errors": m["request_totals"]["errored"],
        "prompt_tokens": m["prompt_token_count"]["successful"]["percentiles"]["p50"],
        "output_tokens": m["output_token_count"]["successful"]["percentiles"]["p50"],
    }


def main():
    if not os.path.exists(os.path.join(VENV, "bin", "guidellm")):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q", "guidellm==0.8.1"])
    if not os.environ.get("GATEPROBE"):
        subprocess.check_call(["cargo", "build", "--release", "-q"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="gateprobe-vs-guidellm-")
    mock = subprocess.Popen([GATEPROBE, "mock", os.path.join(ROOT, "benches/capacity/mock.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        results = {}
        for name, client in (("gateprobe", gateprobe), ("GuideLLM", guidellm)):
            one = client(work, 1, 1)
            full = client(work, REQUESTS, STREAMS)
            full["startup_cpu"] = one["cpu"]
            results[name] = full
    finally:
        mock.terminate()
        mock.wait()
    model = {"ttft": 100 + PROMPT * 0.1, "itl": 20.0, "tpot": 20.0}
    print(f"\n{STREAMS} concurrent streams, {REQUESTS} requests, {PROMPT} prompt / {OUTPUT} output tokens; "
          f"mock model TTFT {model['ttft']:.1f} ms, ITL 20 ms; reports in {work}\n")
    print("| metric | model | " + " | ".join(results) + " |")
    print("|---|--:|" + "--:|" * len(results))
    for metric in ("ttft", "itl", "tpot", "latency"):
        for q in ("p50", "p90", "p99"):
            want = model.get(metric)
            cells = " | ".join(f"{r[metric][q]:.1f} ms" for r in results.values())
            print(f"| {metric} {q} | {f'{want:.1f} ms' if want else '-'} | {cells} |")
    rows = [
        ("requests completed", lambda r: f"{r['requests']}"),
        ("errors", lambda r: f"{r['errors']}"),
        ("prompt tokens p50 (server usage)", lambda r: f"{r['prompt_tokens']:.0f}"),
        ("output tokens p50", lambda r: f"{r['output_tokens']:.0f}"),
        ("req/s", lambda r: f"{r['rps']:.2f}"),
        ("output tokens/s", lambda r: f"{r['tokens_per_s']:.0f}"),
        ("client CPU-s, whole run", lambda r: f"{r['cpu']:.2f}"),
        ("client CPU-s, 1-request run (start-up)", lambda r: f"{r['startup_cpu']:.2f}"),
        ("client CPU-s per 1,000 streamed requests", lambda r: f"{r['cpu'] * 1000 / REQUESTS:.2f}"),
        ("same, start-up left out", lambda r: f"{(r['cpu'] - r['startup_cpu']) * 1000 / REQUESTS:.2f}"),
        ("client peak RSS", lambda r: f"{r['rss']:.0f} MiB"),
    ]
    for label, f in rows:
        print(f"| {label} | | " + " | ".join(f(r) for r in results.values()) + " |")
    g, o = results["gateprobe"], results["GuideLLM"]
    ratio = (o["cpu"] - o["startup_cpu"]) / max(g["cpu"] - g["startup_cpu"], 1e-9)
    print(f"\nGuideLLM uses {ratio:.1f}x gateprobe's CPU per streamed request (start-up left out).")


if __name__ == "__main__":
    main()
