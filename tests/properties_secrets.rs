//! Property tests of the secret search: credentials found in URLs are pieces of them,
//! and a known secret is found and redacted in every encoding a gateway can give it
//! back in (as written, JSON, percent, base64 at any alignment, cut short). The
//! parsers' properties are in `properties.rs`.

use proptest::collection::vec;
use proptest::prelude::*;

/// Cases per property (see `properties.rs`).
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

// ---- credentials in URLs ----

proptest! {
    #![proptest_config(cases(512))]

    /// Any text, URL-like or not: no panic (the authority is cut at ASCII bytes), and
    /// every secret found is a piece of the text, long enough to redact safely.
    #[test]
    fn url_secrets_are_pieces_of_the_url(
        url in prop_oneof![
            any::<String>(),
            "(https?://)?([a-zé:%@]{0,12}@)?[a-z0-9.:é]{0,12}(/[a-z0-9/@é]{0,8})?(\\?([a-zA-Z_-]{1,16}=[^&#]{0,16}&?){0,4})?(#.{0,4})?",
        ]
    ) {
        for (label, value) in gateprobe::redact::url_secrets("u", &url) {
            prop_assert!(url.contains(&value), "{value:?} not in {url:?}");
            prop_assert!(value.len() >= 4, "{label}: {value:?}");
        }
    }
}

// ---- secrets in their encodings ----

/// How a gateway may give a secret back.
#[derive(Clone, Debug)]
enum Encoding {
    Raw,
    /// JSON string contents: `"` and `\` escaped, `/` as `\/` when asked, non-ASCII
    /// as `\uXXXX` when asked (Python's `ensure_ascii`).
    Json {
        slash: bool,
        ascii: bool,
    },
    /// Percent-encoded as a URL component, upper- or lower-case hex.
    Percent {
        lower: bool,
    },
    /// Base64 (`url`: base64url) of the secret between other bytes (`user:KEY`,
    /// `Bearer KEY`), padded or not.
    Base64 {
        url: bool,
        before: Vec<u8>,
        after: Vec<u8>,
        pad: bool,
    },
    /// Its first `keep` characters (at least 8), then `...` or `…`.
    Cut {
        keep: usize,
        ellipsis: bool,
    },
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Raw),
        (any::<bool>(), any::<bool>()).prop_map(|(slash, ascii)| Encoding::Json { slash, ascii }),
        any::<bool>().prop_map(|lower| Encoding::Percent { lower }),
        (
            any::<bool>(),
            vec(any::<u8>(), 0..9),
            vec(any::<u8>(), 0..9),
            any::<bool>()
        )
            .prop_map(|(url, before, after, pad)| Encoding::Base64 {
                url,
                before,
                after,
                pad
            }),
        (8usize..40, any::<bool>()).prop_map(|(keep, ellipsis)| Encoding::Cut { keep, ellipsis }),
    ]
}

/// An independent encoder for each encoding, and the part of its output that depends
/// on the secret alone (what must not survive redaction).
fn encode(secret: &str, e: &Encoding) -> (String, String) {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    match e {
        Encoding::Raw => (secret.to_owned(), secret.to_owned()),
        Encoding::Json { slash, ascii } => {
            let quoted = serde_json::to_string(secret).expect("json");
            let mut s = quoted[1..quoted.len() - 1].to_owned();
            if *slash {
                s = s.replace('/', "\\/");
            }
            if *ascii {
                s = s
                    .chars()
                    .map(|c| {
                        if c.is_ascii() {
                            c.to_string()
                        } else {
                            let mut b = [0u16; 2];
                            c.encode_utf16(&mut b).iter().map(|u| format!("\\u{u:04x}")).collect()
                        }
                    })
                    .collect();
            }
            (s.clone(), s)
        }
        Encoding::Percent { lower } => {
            const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'-')
                .remove(b'.')
                .remove(b'_')
                .remove(b'~');
            let s = percent_encoding::utf8_percent_encode(secret, COMPONENT).to_string();
            let s = if *lower {
                // Lower-case hex digits, the rest as it is.
                let mut out = String::new();
                let mut hex = 0;
                for c in s.chars() {
                    if c == '%' {
                        hex = 2;
                        out.push(c);
                    } else if hex > 0 {
                        hex -= 1;
                        out.push(c.to_ascii_lowercase());
                    } else {
                        out.push(c);
                    }
                }
                out
            } else {
                s
            };
            (s.clone(), s)
        }
        Encoding::Base64 {
            url,
            before,
            after,
            pad,
        } => {
            let mut bytes = before.clone();
            bytes.extend_from_slice(secret.as_bytes());
            bytes.extend_from_slice(after);
            let enc = match (url, pad) {
                (false, true) => STANDARD.encode(&bytes),
                (false, false) => STANDARD_NO_PAD.encode(&bytes),
                (true, true) => URL_SAFE.encode(&bytes),
                (true, false) => URL_SAFE_NO_PAD.encode(&bytes),
            };
            // The characters whose 6 bits all come from the secret's bytes.
            let (from, to) = (before.len() * 8, (before.len() + secret.len()) * 8);
            let core = enc.get(from.div_ceil(6)..to / 6).unwrap_or_default().to_owned();
            (enc, core)
        }
        Encoding::Cut { keep, ellipsis } => {
            // Past a well-known key format's public start (`sk-`, `hf_`, ...), which
            // every key of its kind shares and so is no secret's own.
            let keep = (*keep).max(gateprobe::redact::MIN_PREFIX + gateprobe::redact::public_prefix(secret));
            let start: String = secret.chars().take(keep).collect();
            let mark = if *ellipsis { "…" } else { "..." };
            (format!("{start}{mark}"), start)
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Whatever the encoding and the text around it, the redactor finds the secret
    /// and leaves no piece of it that depends on the secret alone.
    #[test]
    fn secrets_are_found_and_redacted_in_every_encoding(
        secret in "[a-zA-Z0-9_./+=:@%é€ж-]{8,40}",
        e in encoding(),
        before in "[ -~]{0,20}",
        after in "[ -~]{0,20}",
    ) {
        let r = gateprobe::redact::Redactor::new([("s".to_owned(), secret.clone())]);
        let (encoded, core) = encode(&secret, &e);
        let text = format!("{before}{encoded}{after}");
        prop_assert_eq!(r.find(&text), Some("s"), "{:?} in {:?}", e, text);
        let out = r.redact(&text);
        prop_assert!(out.contains("[redacted:s]"), "{:?}: {}", e, out);
        // No run of 12 characters of the secret's part survives (nor all of a
        // shorter one).
        let chars: Vec<char> = core.chars().collect();
        for w in chars.windows(12.min(chars.len())) {
            let piece: String = w.iter().collect();
            prop_assert!(!out.contains(&piece), "{:?}: {} still holds {}", e, out, piece);
        }
    }
}
