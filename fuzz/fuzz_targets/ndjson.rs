//! The AI gateway's ndjson event parser on arbitrary text: no panic, bounded summaries.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (content, summary) = gateprobe::adapter::aigw::parse_ndjson(text);
    // JSON unescaping never lengthens text, so nothing can grow past the input.
    assert!(content.len() <= text.len());
    assert!(summary.malformed.len() <= 5);
    assert!(summary.malformed.iter().all(|m| m.chars().count() <= 120));
    assert!(summary.events <= text.lines().count());
    assert!(summary.errors.len() <= summary.events);
});
