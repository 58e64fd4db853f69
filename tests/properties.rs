//! Property tests of the parsers that read untrusted input: the scenario loader, the SSE
//! parser, the ndjson parser, the AWS event-stream decoder and the SigV4 `Authorization`
//! parser (secrets: `properties_secrets.rs`). Arbitrary input never panics, results
//! do not depend on how a stream is split into chunks, buffers stay bounded, well-formed
//! input round-trips, and every scenario error points inside the text. The fuzz targets
//! under `fuzz/` check the same things for much longer, outside CI.

use std::path::Path;

use gateprobe::scenario::ScenarioError;
use gateprobe::wire::aws::eventstream::{self, DecodeError, Decoder, HeaderValue, Message, PRELUDE_LEN};
use gateprobe::wire::aws::sigv4::{AuthHeader, parse_authorization};
use gateprobe::wire::sse::{Anomaly, Event, Parser};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: enough to find the bugs these found while being written, and the
/// whole file stays within seconds in a debug build.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

/// `data` cut at the given points (duplicates give empty chunks).
fn split<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for a in at {
        chunks.push(&data[start..a]);
        start = a;
    }
    chunks.push(&data[start..]);
    chunks
}

// ---------------------------------------------------------------------------------------
// SSE

fn sse_parse(max: usize, chunks: &[&[u8]]) -> (Vec<Event>, Vec<Anomaly>) {
    let mut p = Parser::new(max);
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c, &mut out);
    }
    (out, p.finish())
}

/// Bytes that look like an event stream: fields, comments, blank lines, every line ending,
/// long values, stray bytes.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"data".to_vec()),
        Just(b"event: ".to_vec()),
        Just(b"id: 1".to_vec()),
        Just(b"retry: 5".to_vec()),
        Just(b": ping".to_vec()),
        Just(b"bogus: x".to_vec()),
        Just(b"[DONE]".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(vec![0xff, 0xfe]),
        "[a-z{}\":, ]{0,12}".prop_map(String::into_bytes),
        (1usize..80).prop_map(|n| vec![b'x'; n]),
    ];
    vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn sse_arbitrary_bytes_keep_events_under_the_limit(
        data in vec(any::<u8>(), 0..512),
        max in 1usize..64,
        cuts in vec(any::<Index>(), 0..6),
    ) {
        let (events, _) = sse_parse(max, &split(&data, &cuts));
        for e in &events {
            prop_assert!(e.data.len() <= max, "{} bytes of data over a {max}-byte limit", e.data.len());
        }
    }

    #[test]
    fn sse_results_do_not_depend_on_chunking(
        data in sse_like(),
        max in 1usize..64,
        cuts in vec(any::<Index>(), 1..8),
    ) {
        let whole = sse_parse(max, &[&data]);
        prop_assert_eq!(&sse_parse(max, &split(&data, &cuts)), &whole, "split");
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(&sse_parse(max, &bytes), &whole, "byte by byte");
    }

    #[test]
    fn sse_well_formed_streams_parse_to_their_events(
        events in vec((proptest::option::of("[a-z_]{1,12}"), vec("[^\r\n]{0,16}", 1..4)), 0..6),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        noise in any::<bool>(),
        cuts in vec(any::<Index>(), 0..6),
    ) {
        let mut text = String::new();
        let mut want = Vec::new();
        for (name, lines) in &events {
            if noise {
                text.push_str(&format!(": comment{ending}id: 4{ending}"));
            }
            if let Some(n) = name {
                text.push_str(&format!("event: {n}{ending}"));
            }
            for l in lines {
                text.push_str(&format!("data: {l}{ending}"));
            }
            text.push_str(ending);
            want.push(Event { event: name.clone(), data: lines.join("\n") });
        }
        let (got, anomalies) = sse_parse(1 << 20, &split(text.as_bytes(), &cuts));
        prop_assert_eq!(got, want);
        prop_assert_eq!(anomalies, vec![]);
    }
}

// ---------------------------------------------------------------------------------------
// AWS event stream

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        vec(any::<u8>(), 0..40).prop_map(HeaderValue::Bytes),
        "\\PC{0,20}".prop_map(HeaderValue::String),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (vec(("\\PC{0,12}", header_value()), 0..6), vec(any::<u8>(), 0..200))
        .prop_map(|(headers, payload)| Message { headers, payload })
}

/// Feeds every chunk, checking the buffer bound after each; stops at the first error.
fn es_decode(max: usize, chunks: &[&[u8]]) -> Result<(Vec<Message>, Result<(), DecodeError>), TestCaseError> {
    let mut d = Decoder::with_max_frame_size(max);
    let mut out = Vec::new();
    for c in chunks {
        let r = d.feed(c, &mut out);
        prop_assert!(
            d.buffered() <= max.max(PRELUDE_LEN),
            "{} bytes buffered with a {max}-byte frame limit",
            d.buffered()
        );
        if r.is_err() {
            return Ok((out, r));
        }
    }
    Ok((out, d.finish()))
}

fn encode_all(msgs: &[Message]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| eventstream::encode(m).expect("encodes"))
        .collect()
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn eventstream_messages_round_trip_however_split(
        msgs in vec(message(), 0..4),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let bytes = encode_all(&msgs);
        let (got, end) = es_decode(eventstream::DEFAULT_MAX_FRAME_SIZE, &split(&bytes, &cuts))?;
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn eventstream_buffer_stays_under_the_frame_limit(
        data in vec(any::<u8>(), 0..600),
        max in 0usize..300,
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let whole = es_decode(max, &[&data])?;
        prop_assert_eq!(es_decode(max, &split(&data, &cuts))?, whole);
    }

    #[test]
    fn eventstream_announced_lengths_cost_nothing_until_bytes_arrive(
        total_len in any::<u32>(),
        headers_len in any::<u32>(),
        tail in vec(any::<u8>(), 0..64),
        max in 0usize..(1 << 20),
    ) {
        // A prelude with a valid CRC, announcing whatever lengths, then a few bytes.
        let mut frame = Vec::new();
        frame.extend_from_slice(&total_len.to_be_bytes());
        frame.extend_from_slice(&headers_len.to_be_bytes());
        frame.extend_from_slice(&crc32fast::hash(&frame).to_be_bytes());
        frame.extend_from_slice(&tail);
        let (got, _) = es_decode(max, &[&frame])?;
        prop_assert!(got.len() <= 1);
        let total = total_len as usize;
        let consistent = total >= eventstream::MIN_FRAME_LEN
            && headers_len as usize <= total - eventstream::MIN_FRAME_LEN;
        if consistent && total > max {
            let mut d = Decoder::with_max_frame_size(max);
            prop_assert_eq!(d.feed(&frame, &mut Vec::new()), Err(DecodeError::TooLarge { total_len, max }));
            prop_assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn eventstream_any_flipped_bit_is_refused(
        msgs in vec(message(), 1..3),
        at in any::<Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = encode_all(&msgs);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(eventstream::decode_all(&bytes).is_err(), "flip of bit {bit} at byte {i} went unnoticed");
    }

    #[test]
    fn eventstream_results_do_not_depend_on_chunking_of_damaged_streams(
        msgs in vec(message(), 1..3),
        damage in vec((any::<Index>(), any::<u8>()), 1..4),
        cut_short in any::<Index>(),
        cuts in vec(any::<Index>(), 1..8),
    ) {
        let mut bytes = encode_all(&msgs);
        for (at, b) in &damage {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        bytes.truncate(cut_short.index(bytes.len() + 1));
        let whole = es_decode(1024, &[&bytes])?;
        prop_assert_eq!(es_decode(1024, &split(&bytes, &cuts))?, whole);
    }
}

// ---------------------------------------------------------------------------------------
// SigV4 Authorization header

fn auth_header() -> impl Strategy<Value = AuthHeader> {
    (
        "[A-Z0-9]{1,20}",
        "[0-9]{8}",
        "[a-z0-9-]{1,15}",
        "[a-z0-9-]{1,12}",
        vec("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", 1..5),
        "[0-9a-fA-F]{64}",
    )
        .prop_map(|(akid, date, region, service, signed, signature)| AuthHeader {
            access_key_id: akid,
            date,
            region,
            service,
            signed_headers: signed,
            signature,
        })
}

/// The header's three components in the given order, joined by the given separators.
fn render(h: &AuthHeader, order: &[usize], seps: &[&str], lead: &str) -> String {
    let parts = [
        format!(
            "Credential={}/{}/{}/{}/aws4_request",
            h.access_key_id, h.date, h.region, h.service
        ),
        format!("SignedHeaders={}", h.signed_headers.join(";")),
        format!("Signature={}", h.signature),
    ];
    let mut s = format!("AWS4-HMAC-SHA256{lead}");
    for (n, &i) in order.iter().enumerate() {
        if n > 0 {
            s.push_str(seps[n - 1]);
        }
        s.push_str(&parts[i]);
    }
    s
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(", "), Just(","), Just(" "), Just("\t"), Just(" ,  ")]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn sigv4_arbitrary_text_never_panics(s in "\\PC{0,200}") {
        if let Err(e) = parse_authorization(&s) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn sigv4_token_soup_never_panics(parts in vec(prop_oneof![
        Just("AWS4-HMAC-SHA256"), Just(" "), Just("\t"), Just(","), Just("="), Just("/"), Just(";"),
        Just("Credential"), Just("SignedHeaders"), Just("Signature"), Just("aws4_request"),
        Just("20240101"), Just("é"), Just("0123456789abcdef"),
    ], 0..40)) {
        let _ = parse_authorization(&parts.concat());
    }

    #[test]
    fn sigv4_headers_it_builds_round_trip(
        h in auth_header(),
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        seps in vec(separator(), 2),
        lead in prop_oneof![Just(" "), Just("\t"), Just("  ")],
    ) {
        let header = render(&h, &order, &seps, lead);
        let want = AuthHeader {
            signed_headers: h.signed_headers.iter().map(|n| n.to_ascii_lowercase()).collect(),
            ..h.clone()
        };
        prop_assert_eq!(parse_authorization(&header), Ok(want));
        // Padding around the whole value is allowed; a missing or repeated component is not.
        let padded = format!(" {header} ");
        prop_assert!(parse_authorization(&padded).is_ok());
        prop_assert!(parse_authorization(&render(&h, &order[..2], &seps, lead)).is_err());
        let mut twice = order.clone();
        twice.push(order[0]);
        prop_assert!(parse_authorization(&render(&h, &twice, &[seps[0], seps[1], ", "], lead)).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// ndjson (the AI gateway's chat events)

#[derive(Clone, Debug)]
enum NdEvent {
    Delta(String, bool),
    Usage,
    Error(String),
    Action,
    Unknown(String),
    Garbage(String),
}

fn nd_event() -> impl Strategy<Value = NdEvent> {
    prop_oneof![
        ("\\PC{0,10}", any::<bool>()).prop_map(|(t, f)| NdEvent::Delta(t, f)),
        Just(NdEvent::Usage),
        "\\PC{0,10}".prop_map(NdEvent::Error),
        Just(NdEvent::Action),
        "[a-z]{1,8}".prop_map(NdEvent::Unknown),
        "[a-z ]{0,150}[a-z]".prop_map(NdEvent::Garbage),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn ndjson_arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let (content, summary) = gateprobe::adapter::aigw::parse_ndjson(&s);
        prop_assert!(content.len() <= s.len());
        prop_assert!(summary.malformed.len() <= 5);
    }

    #[test]
    fn ndjson_events_are_summarised(events in vec(nd_event(), 0..12), crlf in any::<bool>()) {
        use serde_json::json;
        let mut body = String::new();
        let (mut content, mut finished, mut usage, mut errors, mut malformed, mut count) =
            (String::new(), false, false, Vec::new(), Vec::new(), 0);
        for e in &events {
            let line = match e {
                NdEvent::Delta(t, f) => {
                    content.push_str(t);
                    finished |= f;
                    let data = if *f { json!({"text": t, "finish_reason": "stop"}) } else { json!({"text": t}) };
                    json!({"type": "final_answer_delta", "data": data}).to_string()
                }
                NdEvent::Usage => {
                    usage = true;
                    json!({"type": "usage", "data": {}}).to_string()
                }
                NdEvent::Error(m) => {
                    errors.push(m.clone());
                    json!({"type": "error", "data": {"message": m}}).to_string()
                }
                NdEvent::Action => json!({"type": "action", "data": {}}).to_string(),
                NdEvent::Unknown(t) => {
                    let l = json!({"type": format!("x_{t}")}).to_string();
                    malformed.push(l.clone());
                    l
                }
                NdEvent::Garbage(g) => {
                    // Kept to 120 characters, `…` marking a cut.
                    let mut kept: String = g.chars().take(120).collect();
                    if kept.len() < g.len() {
                        kept.push('…');
                    }
                    malformed.push(kept);
                    g.clone()
                }
            };
            if !matches!(e, NdEvent::Garbage(_)) {
                count += 1;
            }
            body.push_str(&line);
            body.push_str(if crlf { "\r\n" } else { "\n" });
        }
        malformed.truncate(5);
        let (got, s) = gateprobe::adapter::aigw::parse_ndjson(&body);
        prop_assert_eq!(got, content);
        prop_assert_eq!(s.events, count);
        prop_assert_eq!(s.finished, finished);
        prop_assert_eq!(s.usage, usage);
        prop_assert_eq!(s.errors, errors);
        prop_assert_eq!(s.malformed, malformed);
    }
}

// ---------------------------------------------------------------------------------------
// Scenario loader

const QUICKSTART: &str = include_str!("../scenarios/quickstart.yaml");

fn load(text: &str) -> Result<(), ScenarioError> {
    gateprobe::scenario::load_str(Path::new("fuzz.yaml"), text, &|_| None).map(|_| ())
}

/// The error renders, names the file, and its position (which only a few whole-file
/// errors may lack) is a line of `text` and a column at most one past that line's end.
fn check_error(e: &ScenarioError, text: &str) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    prop_assert!(shown.starts_with("error: "), "{}", shown);
    let Some(p) = e.pos else {
        prop_assert!(
            e.message == "the scenario file is empty" || e.message.starts_with("the scenario file is "),
            "no position for: {}",
            shown
        );
        return Ok(());
    };
    // A gateway profile the text names may be the file in error.
    if e.file != Path::new("fuzz.yaml") {
        return Ok(());
    }
    // YAML ends a line at `\n`, `\r\n` or a lone `\r`; the position after a final line
    // break is line N+1, column 1.
    let lines: Vec<&str> = text.split("\r\n").flat_map(|l| l.split(['\n', '\r'])).collect();
    prop_assert!(
        p.line >= 1 && p.line as usize <= lines.len(),
        "line {} of {}: {}",
        p.line,
        lines.len(),
        shown
    );
    let len = lines[p.line as usize - 1].chars().count();
    prop_assert!(
        p.col >= 1 && p.col as usize <= len + 1,
        "column {} of a {len}-character line:\n{}",
        p.col,
        shown
    );
    prop_assert!(shown.contains(&format!("fuzz.yaml:{}:{}", p.line, p.col)), "{}", shown);
    Ok(())
}

/// YAML-ish fragments: structure, scenario keys, anchors, tags, quotes, odd characters.
fn yaml_soup() -> impl Strategy<Value = String> {
    let fragments = prop::sample::select(vec![
        "version: 1\n",
        "gateway:\n  kind: builtin\n",
        "backends:\n  b: {provider: openai, models: [M]}\n",
        "self_hosted_models:\n  - name: m\n    family: mixtral\n    identifier: custom_openai/M\n",
        "features:\n  duo_chat: m\n",
        "checks: [routing]\n",
        "load:\n  - name: l\n",
        "endpoint: \"{{ backends.b.url }}/v1\"\n",
        "${env:X}",
        "${env:Y:-d}",
        "  ",
        "- ",
        ": ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "<<: ",
        "!!str ",
        "\"",
        "'",
        "#",
        "|\n",
        ">-\n",
        "---\n",
        "? ",
        "é",
        "\u{feff}",
    ]);
    let piece = prop_oneof![9 => fragments.prop_map(String::from), 1 => "[a-z_]{1,10}"];
    vec(piece, 0..48).prop_map(|p| p.concat())
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Replace(Index, usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let bytes = vec(
        prop::sample::select(b" \t\n\r:-[]{},&*!|>#'\"?%@`~01azAZ\\".to_vec()),
        1..8,
    );
    prop_oneof![
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), bytes.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..8, bytes).prop_map(|(i, n, b)| Edit::Replace(i, n, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        match e {
            Edit::Delete(i, n) => {
                let at = i.index(b.len() + 1);
                b.drain(at..(at + n).min(b.len()));
            }
            Edit::Insert(i, ins) => {
                let at = i.index(b.len() + 1);
                b.splice(at..at, ins.iter().copied());
            }
            Edit::Replace(i, n, ins) => {
                let at = i.index(b.len() + 1);
                b.splice(at..(at + n).min(b.len()), ins.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn the_unmutated_quickstart_loads() {
    load(QUICKSTART).expect("quickstart loads");
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn scenario_arbitrary_text_is_refused_in_place(text in "\\PC{0,200}") {
        if let Err(e) = load(&text) {
            check_error(&e, &text)?;
        }
    }

    #[test]
    fn scenario_yaml_soup_is_refused_in_place(text in yaml_soup()) {
        if let Err(e) = load(&text) {
            check_error(&e, &text)?;
        }
    }

    #[test]
    fn scenario_reference_errors_point_inside_the_text(
        before in vec(prop_oneof![
            Just("a"), Just("é"), Just("𝄞"), Just(" "), Just("\\u00e9"), Just("\\\""), Just("\n      "),
        ], 0..6),
        style in 0usize..3,
    ) {
        let before = before.concat();
        let value = match style {
            0 => format!("\"{before}${{env:MISSING}}\""),
            1 => format!("'{}${{env:MISSING}}'", before.replace(['\\', '"'], "")),
            _ => format!("|\n      {}${{env:MISSING}}", before.replace(['\\', '"'], "").trim_start()),
        };
        let text = format!("version: 1\ngateway:\n  kind: builtin\n  auth:\n    token: {value}\n");
        match load(&text) {
            Ok(()) => prop_assert!(false, "accepted:\n{}", text),
            Err(e) => {
                check_error(&e, &text)?;
                prop_assert_eq!(&e.message, "environment variable `MISSING` is not set");
                // On one line as written, the caret is on the reference itself.
                if style == 0 && !before.contains(['\\', '\n']) {
                    let p = e.pos.expect("positioned");
                    let line = text.lines().nth(p.line as usize - 1).unwrap_or_default();
                    let at: String = line.chars().skip(p.col as usize - 1).take(6).collect();
                    prop_assert_eq!(at, "${env:");
                }
            }
        }
    }

    #[test]
    fn scenario_mutations_of_the_quickstart_are_refused_in_place(edits in vec(edit(), 1..6)) {
        let text = apply(QUICKSTART, &edits);
        if let Err(e) = load(&text) {
            check_error(&e, &text)?;
        }
    }
}
