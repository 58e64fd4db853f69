//! Cross-checks of `gateprobe::wire::aws` against independent implementations: the AWS SDK's own
//! SigV4 signer (`aws-sigv4`) and event-stream codec (`aws-smithy-eventstream`), and the
//! published AWS SigV4 test suite (`tests/fixtures/aws-signing-test-suite`).

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header as TheirHeader, HeaderValue as TheirValue, Message as TheirMessage};
use gateprobe::wire::aws::eventstream::{self, DecodeError, Decoder, HeaderValue, Message};
use gateprobe::wire::aws::sigv4::{self, Credentials, RequestParts, SigV4Error, Verifier};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REGION: &str = "us-east-1";
const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const BODY: &[u8] =
    br#"{"messages":[{"role":"user","content":[{"text":"Say hi"}]}],"inferenceConfig":{"maxTokens":64}}"#;

fn creds() -> Credentials {
    Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
}

/// 2024-05-01T12:00:00Z.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Signs with the AWS SDK's signer, default settings (as the Bedrock runtime client uses
/// them), and returns the headers it says to add.
fn aws_sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    at: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        None,
        "gateprobe-test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// A request as a Bedrock mock would receive it: raw path and query, every header.
struct Received {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn verify_with(&self, verifier: &Verifier<'_>, now: SystemTime) -> Result<(), SigV4Error> {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let parts = RequestParts {
            method: self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        verifier.verify(&parts, now)
    }

    fn verify(&self, creds: &Credentials, now: SystemTime) -> Result<(), SigV4Error> {
        self.verify_with(
            &Verifier {
                credentials: creds,
                region: REGION,
                service: sigv4::SERVICE,
                max_skew: sigv4::DEFAULT_MAX_SKEW,
            },
            now,
        )
    }

    fn header(&self, name: &str) -> &str {
        &self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap()
            .1
    }
}

/// Signs `scheme://authority{path}?{query}` with aws-sigv4 and returns what arrives.
fn signed_by_aws(authority: &str, path: &str, query: &str, creds: &Credentials, at: SystemTime) -> Received {
    let scheme = if authority.contains(':') { "http" } else { "https" };
    let url = match query {
        "" => format!("{scheme}://{authority}{path}"),
        q => format!("{scheme}://{authority}{path}?{q}"),
    };
    let base = [("content-type", "application/json")];
    let added = aws_sign("POST", &url, &base, BODY, creds, REGION, at);
    let mut headers = vec![
        ("Host".to_owned(), authority.to_owned()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    headers.extend(added);
    // Proxies add headers nobody signed; they must not matter.
    headers.push(("User-Agent".to_owned(), "aws-sdk-rust/1.0".to_owned()));
    Received {
        method: "POST",
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: BODY.to_vec(),
    }
}

#[test]
fn aws_sigv4_signed_converse_with_percent_encoded_model_id_verifies() {
    let path = "/model/mistral.mistral-7b-instruct-v0%3A2/converse";
    let req = signed_by_aws(HOST, path, "", &creds(), t0());
    let auth = sigv4::parse_authorization(req.header("authorization")).unwrap();
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    req.verify(&creds(), t0()).unwrap();

    // A mock that decoded the path before verifying would refuse the SDK's signature.
    let decoded = Received {
        path: "/model/mistral.mistral-7b-instruct-v0:2/converse".into(),
        ..req
    };
    assert_eq!(decoded.verify(&creds(), t0()), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn aws_sigv4_signed_invoke_with_raw_colon_verifies() {
    for path in [
        "/model/mistral.mistral-7b-instruct-v0:2/invoke",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke-with-response-stream",
    ] {
        signed_by_aws(HOST, path, "", &creds(), t0())
            .verify(&creds(), t0())
            .unwrap();
    }
}

#[test]
fn aws_sigv4_signed_local_mock_request_with_port_token_and_query_verifies() {
    let temp = creds().with_session_token("IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=chars");
    let req = signed_by_aws(
        "127.0.0.1:38211",
        "/model/us.meta.llama3-1-8b-instruct-v1%3A0/converse-stream",
        "z=1&a=%3A&m=a+b&empty=",
        &temp,
        t0(),
    );
    let auth = sigv4::parse_authorization(req.header("authorization")).unwrap();
    assert_eq!(
        auth.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    );
    req.verify(&temp, t0()).unwrap();
    assert_eq!(req.verify(&creds(), t0()), Err(SigV4Error::UnrecognizedClient));
}

#[test]
fn aws_sigv4_signatures_are_refused_after_any_change() {
    let good = || {
        signed_by_aws(
            HOST,
            "/model/mistral.mistral-7b-instruct-v0%3A2/converse",
            "",
            &creds(),
            t0(),
        )
    };
    good().verify(&creds(), t0()).unwrap();

    let mut body = good();
    body.body[10] ^= 1;
    let mut path = good();
    path.path = path.path.replace("7b", "8b");
    let mut content_type = good();
    content_type.headers[1].1 = "text/plain".into();
    let mut query = good();
    query.query = "trace=1".into();
    for (what, r) in [
        ("body", body),
        ("path", path),
        ("content-type", content_type),
        ("query", query),
    ] {
        assert_eq!(r.verify(&creds(), t0()), Err(SigV4Error::SignatureMismatch), "{what}");
    }

    let wrong_secret = Credentials::new(creds().access_key_id, "another-secret");
    assert_eq!(good().verify(&wrong_secret, t0()), Err(SigV4Error::SignatureMismatch));
    let other_key = Credentials::new("AKIAOTHER", creds().secret_access_key);
    assert_eq!(good().verify(&other_key, t0()), Err(SigV4Error::UnrecognizedClient));
    let late = good()
        .verify(&creds(), t0() + Duration::from_secs(16 * 60))
        .unwrap_err();
    assert!(matches!(late, SigV4Error::SignatureExpired { .. }), "{late}");
    let west = Verifier {
        credentials: &creds(),
        region: "us-west-2",
        service: sigv4::SERVICE,
        max_skew: sigv4::DEFAULT_MAX_SKEW,
    };
    let err = good().verify_with(&west, t0()).unwrap_err();
    assert!(err.to_string().contains("'us-west-2'"), "{err}");
}

#[test]
fn our_signer_matches_aws_sigv4_byte_for_byte() {
    let temp = creds().with_session_token("FwoGZXIvYXdzEXAMPLE");
    let times = [
        t0(),
        UNIX_EPOCH + Duration::from_secs(1_709_251_199), // 2024-02-29T23:59:59Z
        UNIX_EPOCH + Duration::from_secs(1_735_689_600), // 2025-01-01T00:00:00Z
    ];
    let cases = [
        (HOST, "/model/mistral.mistral-7b-instruct-v0%3A2/converse", "", creds()),
        (HOST, "/model/mistral.mistral-7b-instruct-v0:2/invoke", "", creds()),
        (
            "127.0.0.1:38211",
            "/model/amazon.titan-text-express-v1/converse-stream",
            "",
            temp.clone(),
        ),
        (HOST, "/model/a%2Fb/invoke", "b=2&a=1&c=x+y%21", temp),
    ];
    for at in times {
        for (authority, path, query, creds) in &cases {
            let theirs = signed_by_aws(authority, path, query, creds, at);
            let headers = [("host", *authority), ("content-type", "application/json")];
            let parts = RequestParts {
                method: "POST",
                raw_path: path,
                raw_query: query,
                headers: &headers,
                body: BODY,
            };
            let ours = sigv4::sign(&parts, creds, REGION, at).unwrap();
            assert_eq!(ours.authorization, theirs.header("authorization"), "{path}");
            assert_eq!(ours.x_amz_date, theirs.header("x-amz-date"));
            assert_eq!(ours.x_amz_security_token.as_deref(), creds.session_token.as_deref());
            if let Some(token) = &creds.session_token {
                assert_eq!(theirs.header("x-amz-security-token"), token);
            }
        }
    }
}

#[test]
fn header_value_normalisation_matches_aws_sigv4() {
    let path = "/model/mistral.mistral-7b-instruct-v0%3A2/invoke";
    for content_type in [
        "application/json;  charset=utf-8",
        "  application/json   ",
        "application/json;\tq=1",
    ] {
        let theirs = aws_sign(
            "POST",
            &format!("https://{HOST}{path}"),
            &[("content-type", content_type)],
            BODY,
            &creds(),
            REGION,
            t0(),
        );
        let headers = [("host", HOST), ("content-type", content_type)];
        let parts = RequestParts {
            method: "POST",
            raw_path: path,
            raw_query: "",
            headers: &headers,
            body: BODY,
        };
        let ours = sigv4::sign(&parts, &creds(), REGION, t0()).unwrap();
        let their_auth = &theirs.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert_eq!(&ours.authorization, their_auth, "{content_type:?}");

        let mut received = headers.to_vec();
        received.extend(theirs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let parts = RequestParts {
            headers: &received,
            ..parts
        };
        sigv4::verify(&parts, &creds(), REGION, t0(), sigv4::DEFAULT_MAX_SKEW).unwrap();
    }
}

/// One vector of the published suite: the signed request file parsed into parts.
struct Vector {
    name: String,
    received: Received,
    creds: Credentials,
    now: SystemTime,
    dir: std::path::PathBuf,
}

/// Parses a suite request file (`METHOD target HTTP/1.1`, `Name:value` lines, body).
fn parse_http(text: &str) -> Received {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let mut words = request_line.split(' ');
    let method = match words.next().unwrap() {
        "GET" => "GET",
        "POST" => "POST",
        other => panic!("method {other}"),
    };
    // The path may contain spaces (get-space-unnormalized): it is everything up to " HTTP/".
    let target = &request_line[method.len() + 1..request_line.rfind(" HTTP/").unwrap()];
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Received {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn load_vectors() -> Vec<Vector> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-signing-test-suite/v4");
    let mut vectors = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(context) = std::fs::read_to_string(dir.join("context.json")) else {
            continue;
        };
        let context: serde_json::Value = serde_json::from_str(&context).unwrap();
        let c = &context["credentials"];
        let mut creds = Credentials::new(
            c["access_key_id"].as_str().unwrap(),
            c["secret_access_key"].as_str().unwrap(),
        );
        if let Some(token) = c["token"].as_str() {
            creds = creds.with_session_token(token);
        }
        assert_eq!(context["timestamp"], "2015-08-30T12:36:00Z");
        let text = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
        vectors.push(Vector {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            received: parse_http(&text),
            creds,
            now: sigv4::parse_amz_date("20150830T123600Z").unwrap(),
            dir,
        });
    }
    vectors
}

#[test]
fn published_sigv4_test_suite_vectors() {
    let vectors = load_vectors();
    assert_eq!(vectors.len(), 28, "fixture set changed");
    for v in &vectors {
        let read = |f: &str| std::fs::read_to_string(v.dir.join(f)).unwrap();
        let r = &v.received;
        let auth = sigv4::parse_authorization(r.header("authorization")).unwrap();
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let payload = match r.headers.iter().find(|(n, _)| n == "x-amz-content-sha256") {
            Some((_, h)) => h.clone(),
            None => sigv4::payload_hash(&r.body),
        };
        let creq = sigv4::canonical_request(
            r.method,
            &sigv4::canonical_uri(&r.path),
            &sigv4::canonical_query(&r.query),
            &sigv4::canonical_headers(&headers, &auth.signed_headers),
            &auth.signed_headers.join(";"),
            &payload,
        );
        assert_eq!(
            creq,
            read("header-canonical-request.txt"),
            "{}: canonical request",
            v.name
        );
        let scope = sigv4::credential_scope(&auth.date, &auth.region, &auth.service);
        let sts = sigv4::string_to_sign(r.header("x-amz-date"), &scope, &creq);
        assert_eq!(sts, read("header-string-to-sign.txt"), "{}: string to sign", v.name);
        let key = sigv4::signing_key(&v.creds.secret_access_key, &auth.date, &auth.region, &auth.service);
        assert_eq!(
            sigv4::signature(&key, &sts),
            read("header-signature.txt").trim(),
            "{}",
            v.name
        );

        let verifier = Verifier {
            credentials: &v.creds,
            region: "us-east-1",
            service: "service",
            max_skew: sigv4::DEFAULT_MAX_SKEW,
        };
        r.verify_with(&verifier, v.now)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    }
}

#[test]
fn published_double_encoding_vectors_match_canonical_uri() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-signing-test-suite/v4");
    for name in ["double-url-encode", "double-encode-path"] {
        let request = std::fs::read_to_string(root.join(name).join("request.txt")).unwrap();
        let path = parse_http(&request).path;
        let creq = std::fs::read_to_string(root.join(name).join("header-canonical-request.txt")).unwrap();
        assert_eq!(sigv4::canonical_uri(&path), creq.lines().nth(1).unwrap(), "{name}");
    }
}

// ---- event stream ----

fn to_theirs(m: &Message) -> TheirMessage {
    let headers = m
        .headers
        .iter()
        .map(|(n, v)| {
            let value = match v {
                HeaderValue::Bool(b) => TheirValue::Bool(*b),
                HeaderValue::Byte(b) => TheirValue::Byte(*b),
                HeaderValue::Int16(i) => TheirValue::Int16(*i),
                HeaderValue::Int32(i) => TheirValue::Int32(*i),
                HeaderValue::Int64(i) => TheirValue::Int64(*i),
                HeaderValue::Bytes(b) => TheirValue::ByteArray(b.clone().into()),
                HeaderValue::String(s) => TheirValue::String(s.clone().into()),
                HeaderValue::Timestamp(ms) => TheirValue::Timestamp(aws_smithy_types::DateTime::from_millis(*ms)),
                HeaderValue::Uuid(u) => TheirValue::Uuid(u128::from_be_bytes(*u)),
            };
            TheirHeader::new(n.clone(), value)
        })
        .collect();
    TheirMessage::new_from_parts(headers, m.payload.clone())
}

fn from_theirs(m: &TheirMessage) -> Message {
    let headers = m
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                TheirValue::Bool(b) => HeaderValue::Bool(*b),
                TheirValue::Byte(b) => HeaderValue::Byte(*b),
                TheirValue::Int16(i) => HeaderValue::Int16(*i),
                TheirValue::Int32(i) => HeaderValue::Int32(*i),
                TheirValue::Int64(i) => HeaderValue::Int64(*i),
                TheirValue::ByteArray(b) => HeaderValue::Bytes(b.to_vec()),
                TheirValue::String(s) => HeaderValue::String(s.as_str().to_owned()),
                TheirValue::Timestamp(t) => HeaderValue::Timestamp(t.to_millis().unwrap()),
                TheirValue::Uuid(u) => HeaderValue::Uuid(u.to_be_bytes()),
                other => panic!("unexpected header value {other:?}"),
            };
            (h.name().as_str().to_owned(), value)
        })
        .collect();
    Message {
        headers,
        payload: m.payload().to_vec(),
    }
}

fn their_encode(m: &TheirMessage) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_to(m, &mut out).unwrap();
    out
}

fn sample_messages() -> Vec<Message> {
    vec![
        eventstream::event("messageStart", br#"{"role":"assistant"}"#.to_vec()),
        eventstream::event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hel"}}"#.to_vec(),
        ),
        eventstream::event("chunk", br#"{"bytes":"eyJvdXRwdXRzIjpbeyJ0ZXh0IjoiaGkifV19"}"#.to_vec()),
        eventstream::exception(
            "throttlingException",
            br#"{"message":"Too many requests, please wait."}"#.to_vec(),
        ),
        Message {
            headers: vec![
                ("t".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("b".into(), HeaderValue::Byte(-7)),
                ("s".into(), HeaderValue::Int16(-20_000)),
                ("i".into(), HeaderValue::Int32(i32::MIN)),
                ("l".into(), HeaderValue::Int64(i64::MAX)),
                ("bytes".into(), HeaderValue::Bytes(vec![0, 255, 7])),
                ("str".into(), "ünïcødé ✓".into()),
                ("time".into(), HeaderValue::Timestamp(1_714_564_800_123)),
                ("uuid".into(), HeaderValue::Uuid(*b"0123456789abcdef")),
            ],
            payload: vec![0, 1, 2, 255],
        },
        Message::default(),
        eventstream::event("big", vec![b'x'; 70_000]),
    ]
}

#[test]
fn our_frames_decode_with_aws_smithy_eventstream() {
    for m in sample_messages() {
        let ours = eventstream::encode(&m).unwrap();
        let decoded = read_message_from(&ours[..]).unwrap();
        assert_eq!(from_theirs(&decoded), m);
        // Same bytes both ways: header order, lengths and both CRCs agree exactly.
        assert_eq!(ours, their_encode(&to_theirs(&m)));
    }

    // Their incremental decoder, fed our stream one byte at a time.
    let stream: Vec<u8> = sample_messages()
        .iter()
        .flat_map(|m| eventstream::encode(m).unwrap())
        .collect();
    // `&[u8]` is their input buffer type here; `consumed` tracks what their decoder took.
    let mut decoder = MessageFrameDecoder::new();
    let mut got = Vec::new();
    let mut consumed = 0;
    for arrived in 1..=stream.len() {
        let mut unread = &stream[consumed..arrived];
        if let DecodedFrame::Complete(m) = decoder.decode_frame(&mut unread).unwrap() {
            got.push(from_theirs(&m));
        }
        consumed = arrived - unread.len();
    }
    assert_eq!(consumed, stream.len());
    assert_eq!(got, sample_messages());
}

#[test]
fn aws_smithy_eventstream_frames_decode_with_ours_at_every_split() {
    let stream: Vec<u8> = sample_messages()
        .iter()
        .flat_map(|m| their_encode(&to_theirs(m)))
        .collect();
    assert_eq!(eventstream::decode_all(&stream).unwrap(), sample_messages());
    // Every split point of the first 600 bytes plus a sample of the rest (the 70 kB frame
    // would make an exhaustive sweep quadratic).
    for split in (0..600).chain((600..stream.len()).step_by(997)).chain([stream.len()]) {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        d.feed(&stream[..split], &mut got).unwrap();
        d.feed(&stream[split..], &mut got).unwrap();
        d.finish().unwrap();
        assert_eq!(got, sample_messages(), "split at {split}");
    }
}

#[test]
fn crc_mismatches_are_detected_by_both_implementations() {
    let m = eventstream::event(
        "contentBlockDelta",
        br#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#.to_vec(),
    );

    // Our frame with a payload byte flipped: theirs must refuse it.
    let mut ours = eventstream::encode(&m).unwrap();
    let last_payload = ours.len() - 5;
    ours[last_payload] ^= 0x04;
    let err = read_message_from(&ours[..]).unwrap_err();
    assert!(err.to_string().contains("message checksum"), "{err}");

    // Their frame with a payload byte flipped, or its prelude CRC broken: ours must refuse it.
    let good = their_encode(&to_theirs(&m));
    let mut bad = good.clone();
    bad[last_payload] ^= 0x04;
    assert!(matches!(
        eventstream::decode_all(&bad),
        Err(DecodeError::MessageCrc { .. })
    ));
    let mut bad = good.clone();
    bad[8] ^= 0x80;
    assert!(matches!(
        eventstream::decode_all(&bad),
        Err(DecodeError::PreludeCrc { .. })
    ));
    let mut bad = good;
    bad[3] ^= 0x01;
    assert!(matches!(
        eventstream::decode_all(&bad),
        Err(DecodeError::PreludeCrc { .. })
    ));
    // And theirs agrees that a broken prelude CRC is fatal.
    let mut ours = eventstream::encode(&m).unwrap();
    ours[8] ^= 0x80;
    let err = read_message_from(&ours[..]).unwrap_err();
    assert!(err.to_string().contains("prelude checksum"), "{err}");
}
