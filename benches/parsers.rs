//! Hot paths of the client side: SSE parsing, chat-event parsing, correlation-id
//! extraction and report redaction.
//!
//! Run: `cargo bench --bench parsers`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateprobe::adapter::aigw::parse_ndjson;
use gateprobe::mock::journal::find_correlation_id;
use gateprobe::redact::Redactor;
use gateprobe::wire::sse::Parser;

fn sse_stream(chunks: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..chunks {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let stream = sse_stream(256);
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("parse_256_chunks_whole", |b| {
        b.iter(|| {
            let mut p = Parser::default();
            let mut out = Vec::with_capacity(300);
            p.feed(black_box(&stream), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("parse_256_chunks_in_64_byte_reads", |b| {
        b.iter(|| {
            let mut p = Parser::default();
            let mut out = Vec::with_capacity(300);
            for chunk in stream.chunks(64) {
                p.feed(black_box(chunk), &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();

    let ndjson: String = (0..256)
        .map(|i| {
            format!("{{\"type\":\"final_answer_delta\",\"data\":{{\"text\":\"tok{i} \",\"finish_reason\":null}}}}\n")
        })
        .collect();
    let mut g = c.benchmark_group("ndjson");
    g.throughput(Throughput::Bytes(ndjson.len() as u64));
    g.bench_function("parse_256_events", |b| {
        b.iter(|| black_box(parse_ndjson(black_box(&ndjson))))
    });
    g.finish();

    let prompt = format!("{}[gp-0a1b2c3d-123456]{}", "x".repeat(2000), "y".repeat(2000));
    c.bench_function("correlation_id_in_4k_prompt", |b| {
        b.iter(|| black_box(find_correlation_id(black_box(&prompt))))
    });

    let r = Redactor::new((0..8).map(|i| (format!("k{i}"), format!("sk-secret-value-{i:04}"))));
    let body = "no secrets here, just a long error message ".repeat(100);
    c.bench_function("redact_4k_clean_text_8_secrets", |b| {
        b.iter(|| black_box(r.redact(black_box(&body)).len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
