//! How faithfully the mocks keep their timing model under load: TTFT 100 ms and ITL
//! 20 ms at 200 concurrent streams, as seen by a client on the same machine.
//!
//! Each of the 200 clients runs streams back to back, the clients starting 1 ms apart,
//! so the mock serves a steady 200 concurrent streams instead of one burst of 200
//! requests arriving at once (a burst measures the accept queue, not the pacing).
//!
//! Run: `cargo bench --bench mock_timing` (options: `-- --streams N --tokens N --rounds N`).
//! Prints the configured and observed medians and p99s, and the deviation of the
//! medians, which should stay within 1 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateprobe::mock::journal::Journal;
use gateprobe::server::ServerHost;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let streams = arg("--streams", 200);
    let tokens = arg("--tokens", 20);
    let rounds = arg("--rounds", 4);
    let scenario = format!(
        "gateway: {{kind: builtin}}\nbackends:\n  vllm:\n    provider: openai\n    models: [m]\n    timing: {{ttft: 100ms, itl: 20ms, tokens: {tokens}}}\n"
    );
    let s = gateprobe::scenario::load_str(Path::new("bench.yaml"), &scenario, &|_| None).expect("valid scenario");
    // The mock runs on its own runtime, as in a gateprobe run.
    let host = ServerHost::new(2).expect("server host");
    let journal = Arc::new(Journal::new(Instant::now(), 1_000_000));
    let mocks = gateprobe::mock::start_all(&host, &s.backends, &journal).expect("mock");
    let url = format!("{}/v1/chat/completions", mocks[0].server.url());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(streams)
        .build()
        .expect("client");
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true});

    let (mut ttft, mut itl) = (Vec::new(), Vec::new());
    let results: Vec<Vec<(f64, Vec<f64>)>> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for c in 0..streams {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(c as u64)).await;
                let mut out = Vec::new();
                for _ in 0..rounds {
                    let sent = Instant::now();
                    let resp = client.post(&url).json(&body).send().await.expect("send");
                    let mut stream = resp.bytes_stream();
                    let mut parser = gateprobe::wire::sse::Parser::default();
                    let mut events = Vec::new();
                    let mut arrivals: Vec<Duration> = Vec::new();
                    while let Some(chunk) = stream.next().await {
                        let at = sent.elapsed();
                        parser.feed(&chunk.expect("chunk"), &mut events);
                        for e in events.drain(..) {
                            if e.data.contains("\"content\":\"") && !e.data.contains("\"role\"") {
                                arrivals.push(at);
                            }
                        }
                    }
                    let first = arrivals.first().copied().unwrap_or_default().as_secs_f64() * 1000.0;
                    let gaps = arrivals
                        .windows(2)
                        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
                        .collect();
                    out.push((first, gaps));
                }
                out
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.expect("task"));
        }
        out
    });
    // Each client's first stream warms its connection up; it is not counted.
    for per_client in results {
        for (f, g) in per_client.into_iter().skip(1) {
            ttft.push(f);
            itl.extend(g);
        }
    }
    let (t50, t99) = (percentile(&mut ttft, 0.5), percentile(&mut ttft, 0.99));
    let (i50, i99) = (percentile(&mut itl, 0.5), percentile(&mut itl, 0.99));
    println!(
        "mock timing: {streams} concurrent streams, {tokens} tokens each, {} measured streams per client",
        rounds.saturating_sub(1)
    );
    println!(
        "  TTFT configured 100.000 ms  observed p50 {t50:8.3} ms  p99 {t99:8.3} ms  (p50 off by {:+.3} ms)",
        t50 - 100.0
    );
    println!(
        "  ITL  configured  20.000 ms  observed p50 {i50:8.3} ms  p99 {i99:8.3} ms  (p50 off by {:+.3} ms)",
        i50 - 20.0
    );
    let ok = (t50 - 100.0).abs() <= 1.0 && (i50 - 20.0).abs() <= 1.0;
    println!("  medians within 1 ms: {}", if ok { "yes" } else { "NO" });
}
