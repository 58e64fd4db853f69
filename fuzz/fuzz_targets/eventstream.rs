//! The AWS event-stream decoder on arbitrary bytes: no panic, never more buffered than one
//! frame under the limit, the same result however the bytes are split, and every decoded
//! message encodes back to a frame that decodes to it.

#![no_main]

use gateprobe::wire::aws::eventstream::{self, DecodeError, Decoder, Message, PRELUDE_LEN};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 4096;

fn decode(chunks: &[&[u8]]) -> (Vec<Message>, Result<(), DecodeError>) {
    let mut d = Decoder::with_max_frame_size(MAX_FRAME);
    let mut out = Vec::new();
    for c in chunks {
        let r = d.feed(c, &mut out);
        assert!(
            d.buffered() <= MAX_FRAME.max(PRELUDE_LEN),
            "{} bytes buffered",
            d.buffered()
        );
        if r.is_err() {
            // A failed decoder stays failed.
            assert_eq!(d.feed(b"more", &mut Vec::new()), r);
            return (out, r);
        }
    }
    let end = d.finish();
    (out, end)
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(&[data]);
    // Each byte of the data, in turn, gives a chunk length (0 makes an empty chunk); one
    // round through the data, then the rest in one chunk.
    let mut chunks = Vec::new();
    let mut rest = data;
    for &b in data {
        let (c, r) = rest.split_at((b as usize % 23).min(rest.len()));
        chunks.push(c);
        rest = r;
    }
    chunks.push(rest);
    assert_eq!(decode(&chunks), whole, "in chunks");
    for m in &whole.0 {
        let frame = eventstream::encode(m).expect("a decoded message encodes");
        assert_eq!(eventstream::decode_all(&frame).as_deref(), Ok(std::slice::from_ref(m)));
    }
});
