//! Unit tests for the event-stream codec: known-answer vectors published with AWS's C
//! implementation, round trips, and hostile input.

use super::*;

/// `aws-c-event-stream` tests/message_deserializer_test.c: no headers, payload `{'foo':'bar'}`.
const CRT_NO_HEADERS: &[u8] = &[
    0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a,
    0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
];

/// Same source: one `content-type: application/json` string header.
const CRT_ONE_HEADER: &[u8] = &[
    0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C, b'c', b'o', b'n', b't', b'e', b'n',
    b't', b'-', b't', b'y', b'p', b'e', 0x07, 0x00, 0x10, b'a', b'p', b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o',
    b'n', b'/', b'j', b's', b'o', b'n', 0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d,
    0x8D, 0x9C, 0x08, 0xB1,
];

/// The smithy-rs test vector `valid_with_all_headers_and_payload`: one header of every type.
const ALL_TYPES_HEX: &str = concat!(
    "000000960000007a8bb495fb0474727565000566616c736501046279746502320573686f7274034e2003696e74040007",
    "a120046c6f6e67050000000ba43b740005627974657306000a736f6d6520627974657303737472070008736f6d652073",
    "74720474696d6508000000012a05f200047575696409b79bc914de214e13b8b2bc47e85b7f0b736f6d65207061796c6f",
    "616401a05860",
);

fn all_types_message() -> Message {
    Message {
        headers: vec![
            ("true".into(), HeaderValue::Bool(true)),
            ("false".into(), HeaderValue::Bool(false)),
            ("byte".into(), HeaderValue::Byte(50)),
            ("short".into(), HeaderValue::Int16(20_000)),
            ("int".into(), HeaderValue::Int32(500_000)),
            ("long".into(), HeaderValue::Int64(50_000_000_000)),
            ("bytes".into(), HeaderValue::Bytes(b"some bytes".to_vec())),
            ("str".into(), "some str".into()),
            ("time".into(), HeaderValue::Timestamp(5_000_000_000)),
            (
                "uuid".into(),
                HeaderValue::Uuid(0xb79bc914_de21_4e13_b8b2_bc47e85b7f0b_u128.to_be_bytes()),
            ),
        ],
        payload: b"some payload".to_vec(),
    }
}

/// Frames an arbitrary header block with correct lengths and CRCs, so header parsing can be
/// tested on its own.
fn frame_raw(header_block: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (MIN_FRAME_LEN + header_block.len() + payload.len()) as u32;
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&(header_block.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(header_block);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

fn feed_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out)?;
    Ok(out)
}

#[test]
fn crt_vectors_decode_and_encode_byte_for_byte() {
    let plain = Message {
        headers: vec![],
        payload: b"{'foo':'bar'}".to_vec(),
    };
    assert_eq!(decode_all(CRT_NO_HEADERS).unwrap(), vec![plain.clone()]);
    assert_eq!(encode(&plain).unwrap(), CRT_NO_HEADERS);

    let typed = Message {
        headers: vec![("content-type".into(), "application/json".into())],
        ..plain
    };
    assert_eq!(decode_all(CRT_ONE_HEADER).unwrap(), vec![typed.clone()]);
    assert_eq!(encode(&typed).unwrap(), CRT_ONE_HEADER);
}

#[test]
fn every_header_type_matches_the_reference_vector() {
    let bytes = hex::decode(ALL_TYPES_HEX).unwrap();
    assert_eq!(decode_all(&bytes).unwrap(), vec![all_types_message()]);
    assert_eq!(encode(&all_types_message()).unwrap(), bytes);
}

#[test]
fn bedrock_helpers_set_the_headers_bedrock_sends() {
    let m = event(
        "contentBlockDelta",
        br#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#.to_vec(),
    );
    let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
    assert_eq!(m.event_type(), Some("contentBlockDelta"));
    assert_eq!(m.header_str(":content-type"), Some("application/json"));
    assert_eq!(m.message_type(), Some("event"));

    let x = exception("throttlingException", br#"{"message":"Too many requests"}"#.to_vec());
    assert_eq!(x.message_type(), Some("exception"));
    assert_eq!(x.exception_type(), Some("throttlingException"));
    assert_eq!(x.event_type(), None);
    assert_eq!(decode_all(&encode(&x).unwrap()).unwrap(), vec![x]);
}

#[test]
fn split_at_every_byte_yields_the_same_messages() {
    let messages = vec![
        event("chunk", br#"{"bytes":"eyJvdXRwdXRzIjpbXX0="}"#.to_vec()),
        all_types_message(),
        Message::default(),
        exception("modelStreamErrorException", br#"{"message":"boom"}"#.to_vec()),
    ];
    let mut stream = Vec::new();
    for m in &messages {
        encode_into(m, &mut stream).unwrap();
    }
    for split in 0..=stream.len() {
        let mut d = Decoder::new();
        let mut got = feed_all(&mut d, &stream[..split]).unwrap();
        got.extend(feed_all(&mut d, &stream[split..]).unwrap());
        d.finish().unwrap();
        assert_eq!(got, messages, "split at {split}");
    }
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for b in &stream {
        d.feed(std::slice::from_ref(b), &mut got).unwrap();
    }
    d.finish().unwrap();
    assert_eq!(got, messages);
}

#[test]
fn corrupt_prelude_crc_is_reported_before_lengths_are_used() {
    let mut bytes = encode(&event("chunk", b"{}".to_vec())).unwrap();
    // Corrupt the total length: an unchecked decoder would wait for 16 MiB more.
    bytes[1] ^= 0xff;
    let err = decode_all(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::PreludeCrc { .. }), "{err}");

    let mut bytes = encode(&event("chunk", b"{}".to_vec())).unwrap();
    bytes[9] ^= 0x01;
    assert!(matches!(decode_all(&bytes), Err(DecodeError::PreludeCrc { .. })));
}

#[test]
fn corrupt_payload_or_header_byte_fails_the_message_crc() {
    let good = encode(&event("chunk", br#"{"bytes":"AAAA"}"#.to_vec())).unwrap();
    for i in PRELUDE_LEN..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x20;
        let err = decode_all(&bad).unwrap_err();
        assert!(matches!(err, DecodeError::MessageCrc { .. }), "byte {i}: {err}");
    }
}

#[test]
fn oversized_frame_is_rejected_without_allocating() {
    let mut prelude = (u32::MAX - 1).to_be_bytes().to_vec();
    prelude.extend_from_slice(&0u32.to_be_bytes());
    prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
    let mut d = Decoder::new();
    let err = feed_all(&mut d, &prelude).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            total_len: u32::MAX - 1,
            max: DEFAULT_MAX_FRAME_SIZE
        }
    );
    assert!(d.buf.capacity() <= PRELUDE_LEN, "buffered {} bytes", d.buf.capacity());
    // The failure is sticky: the stream has no framing left to resynchronise on.
    assert_eq!(feed_all(&mut d, b"more").unwrap_err(), err);
    assert_eq!(d.finish().unwrap_err(), err);

    // The limit is configurable and inclusive.
    let frame = encode(&event("chunk", vec![b'x'; 100])).unwrap();
    assert!(decode_all(&frame).is_ok());
    let mut tight = Decoder::with_max_frame_size(frame.len() - 1);
    assert!(matches!(
        feed_all(&mut tight, &frame),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut exact = Decoder::with_max_frame_size(frame.len());
    assert_eq!(feed_all(&mut exact, &frame).unwrap().len(), 1);
}

#[test]
fn a_promised_large_frame_only_costs_what_arrives() {
    // Even with no limit at all, a prelude promising 4 GiB reserves at most 64 KiB; the rest
    // is allocated only as bytes arrive.
    let mut prelude = (u32::MAX - 1).to_be_bytes().to_vec();
    prelude.extend_from_slice(&0u32.to_be_bytes());
    prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
    let mut d = Decoder::with_max_frame_size(usize::MAX);
    assert!(feed_all(&mut d, &prelude).unwrap().is_empty());
    assert!(
        d.buf.capacity() <= INITIAL_RESERVE + PRELUDE_LEN,
        "reserved {}",
        d.buf.capacity()
    );
    assert!(feed_all(&mut d, &[0; 1000]).unwrap().is_empty());
    assert!(d.buf.capacity() <= INITIAL_RESERVE + PRELUDE_LEN);
    assert_eq!(
        d.finish(),
        Err(DecodeError::Truncated {
            buffered: PRELUDE_LEN + 1000
        })
    );
}

#[test]
fn impossible_lengths_are_rejected() {
    for (total, headers) in [(0u32, 0u32), (15, 0), (16, 1), (20, 5), (100, u32::MAX)] {
        let mut prelude = total.to_be_bytes().to_vec();
        prelude.extend_from_slice(&headers.to_be_bytes());
        prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
        let err = feed_all(&mut Decoder::new(), &prelude).unwrap_err();
        assert_eq!(
            err,
            DecodeError::BadLength {
                total_len: total,
                headers_len: headers
            }
        );
    }
}

#[test]
fn truncated_stream_is_reported_at_the_end() {
    let frame = encode(&event("chunk", b"{}".to_vec())).unwrap();
    for cut in 1..frame.len() {
        let mut d = Decoder::new();
        assert!(feed_all(&mut d, &frame[..cut]).unwrap().is_empty());
        assert_eq!(d.buffered(), cut);
        assert_eq!(d.finish(), Err(DecodeError::Truncated { buffered: cut }));
    }
    assert_eq!(decode_all(&[]).unwrap(), vec![]);
}

#[test]
fn malformed_header_blocks_are_typed_errors() {
    let cases: &[(&[u8], usize, &str)] = &[
        (&[5, b'a'], 0, "name runs past the header block"),
        (&[1, b'a'], 0, "missing value type"),
        (&[1, b'a', 42], 0, "unknown value type"),
        (&[1, b'a', TYPE_INT32, 0, 0], 0, "value runs past the header block"),
        (
            &[1, b'a', TYPE_STRING, 0, 9, b'x'],
            0,
            "value runs past the header block",
        ),
        (&[1, b'a', TYPE_STRING, 0, 1, 0xff], 0, "string value is not UTF-8"),
        (&[1, 0xc3, TYPE_TRUE], 0, "name is not UTF-8"),
        (
            &[1, b'a', TYPE_TRUE, 1, b'b', TYPE_UUID, 1, 2],
            3,
            "value runs past the header block",
        ),
    ];
    for &(block, offset, reason) in cases {
        let err = decode_all(&frame_raw(block, b"")).unwrap_err();
        assert_eq!(err, DecodeError::BadHeader { offset, reason }, "{block:?}");
    }
}

#[test]
fn encode_refuses_what_the_format_cannot_carry() {
    let mut out = b"keep".to_vec();
    let long_name = Message {
        headers: vec![("n".repeat(256), HeaderValue::Bool(true))],
        payload: vec![],
    };
    assert_eq!(
        encode_into(&long_name, &mut out),
        Err(EncodeError::HeaderNameTooLong { len: 256 })
    );
    let long_value = Message {
        headers: vec![("v".into(), HeaderValue::Bytes(vec![0; 65_536]))],
        payload: vec![],
    };
    assert!(matches!(
        encode_into(&long_value, &mut out),
        Err(EncodeError::HeaderValueTooLong { len: 65_536, .. })
    ));
    assert_eq!(out, b"keep", "a failed encode leaves the buffer as it was");

    let limits = Message {
        headers: vec![
            ("n".repeat(255), HeaderValue::String("s".repeat(65_535))),
            (String::new(), HeaderValue::Bool(false)),
        ],
        payload: vec![],
    };
    assert_eq!(decode_all(&encode(&limits).unwrap()).unwrap(), vec![limits]);
}

#[test]
fn hostile_bytes_never_panic() {
    // Deterministic xorshift so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid = encode(&all_types_message()).unwrap();
    for _ in 0..2_000 {
        let mut bytes = valid.clone();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] = next() as u8;
        }
        let _ = decode_all(&bytes);
        // Header parsing behind a valid CRC is the part the CRC does not protect.
        let block = &bytes[PRELUDE_LEN..PRELUDE_LEN + 0x7a];
        let _ = decode_all(&frame_raw(block, b""));
    }
    for len in 0..64 {
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_all(&noise);
    }
}
