//! The SSE parser on arbitrary bytes: no panic, a buffer bounded by the event limit, and
//! the same events and anomalies however the bytes are split into chunks.

#![no_main]

use gateprobe::wire::sse::{Anomaly, Event, Parser};
use libfuzzer_sys::fuzz_target;

const MAX_EVENT: usize = 64;

fn parse(chunks: &[&[u8]]) -> (Vec<Event>, Vec<Anomaly>) {
    let mut p = Parser::new(MAX_EVENT);
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c, &mut out);
    }
    for e in &out {
        assert!(e.data.len() <= MAX_EVENT, "event of {} bytes", e.data.len());
    }
    (out, p.finish())
}

fuzz_target!(|data: &[u8]| {
    let whole = parse(&[data]);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(parse(&bytes), whole, "byte by byte");
    // Each byte of the data, in turn, gives a chunk length (0 makes an empty chunk); one
    // round through the data, then the rest in one chunk.
    let mut chunks = Vec::new();
    let mut rest = data;
    for &b in data {
        let (c, r) = rest.split_at((b as usize % 19).min(rest.len()));
        chunks.push(c);
        rest = r;
    }
    chunks.push(rest);
    assert_eq!(parse(&chunks), whole, "in chunks");
});
