//! The AI gateway's ndjson event parser on arbitrary text: no panic, bounded summaries.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (content, summary) = gateprobe::adapter::aigw::parse_ndjson(text);
    // JSON unescaping never lengthens text, so nothing can grow past the input.
    assert!(content.len() <= text.len());
    assert!(summary.malformed.len() <= 5);
    // A malformed line is kept to 120 characters, and a cut one is marked with '…'.
    assert!(summary.malformed.iter().all(|m| {
        let n = m.chars().count();
        n <= 120 || (n == 121 && m.ends_with('…'))
    }));
    assert!(summary.events <= text.lines().count());
    assert!(summary.errors.len() <= summary.events);
});
