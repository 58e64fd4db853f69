//! The SigV4 `Authorization` parser on arbitrary text: no panic, and whatever it accepts,
//! written back in the canonical form, parses to the same thing.

#![no_main]

use gateprobe::wire::aws::sigv4::parse_authorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_authorization(text) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(h) => {
            let canonical = format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
                h.access_key_id,
                h.date,
                h.region,
                h.service,
                h.signed_headers.join(";"),
                h.signature
            );
            assert_eq!(parse_authorization(&canonical).as_ref(), Ok(&h), "{canonical}");
        }
    }
});
