//! The pure building blocks of SigV4: canonical URI, query and headers, the canonical
//! request, the string to sign, the signing-key chain and `X-Amz-Date` conversion. Signer
//! and verifier both use these, so they cannot drift apart; each is public so tests can
//! check it against the published AWS signing test suite step by step.

use super::SigV4Error;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The signing algorithm named in the Authorization header and the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const SECONDS_PER_DAY: u64 = 86_400;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// SigV4 URI encoding: unreserved bytes stay, everything else becomes `%XY` (upper hex).
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
        }
    }
}

/// The canonical URI of a request as received: every byte of the raw wire path is
/// percent-encoded except unreserved characters and `/`.
///
/// Bedrock, like every AWS service but S3, signs the path encoded once more than it is
/// sent, so a model id sent as `v0%3A2` is signed as `v0%253A2` and one sent with a raw
/// colon is signed as `v0%3A2`. The path is not normalised (no `.`/`..` or `//` folding):
/// the verifier must see exactly what the client signed.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(raw_path.len() + 8);
    uri_encode(raw_path.as_bytes(), true, &mut out);
    out
}

/// Decodes `application/x-www-form-urlencoded` bytes the way the AWS SDKs do before
/// re-encoding: `+` is a space and `%XY` a byte; a `%` not followed by two hex digits is
/// kept literally (and so signed as `%25`).
fn form_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = b.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
                let lo = b.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    // Two hex digits are at most 0xff.
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The canonical query string: parameters decoded, re-encoded strictly, sorted by encoded
/// name then value, joined with `&`; a parameter without `=` gets an empty value.
pub fn canonical_query(raw_query: &str) -> String {
    let raw_query = raw_query.strip_prefix('?').unwrap_or(raw_query);
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&form_decode(k), false, &mut ek);
            uri_encode(&form_decode(v), false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The canonical header block: for each name in `signed` (lower case, in the order
/// given), `name:value\n`, where value joins every header of that name with `,`, each
/// trimmed of spaces and with inner runs of spaces collapsed to one. Only spaces, as the
/// AWS SDK signers do: a tab inside a value is signed as is. A signed header the request
/// lacks contributes an empty value, which then fails the signature check.
pub fn canonical_headers<S: AsRef<str>>(headers: &[(&str, &str)], signed: &[S]) -> String {
    let mut out = String::new();
    for name in signed {
        let name = name.as_ref();
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(',');
            }
            first = false;
            for (i, word) in value.split(' ').filter(|w| !w.is_empty()).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out.push('\n');
    }
    out
}

/// Lower-case hex SHA-256 of the body, the payload hash of the canonical request.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH`; `canonical_headers`
/// already ends in `\n`, hence the blank line before the signed-header list.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}")
}

/// `date/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\nhex(sha256(canonical_request))`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// HMAC-SHA256 keyed with `key`, fed `data`, not yet finalised (so the verifier can use the
/// constant-time comparison of the MAC itself).
pub(super) fn hmac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

fn hmac_bytes(key: &[u8], data: &str) -> [u8; 32] {
    hmac(key, data.as_bytes()).finalize().into_bytes().into()
}

/// The signing key: HMAC chain `"AWS4" + secret` -> date -> region -> service -> `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, TERMINATOR)
}

/// Lower-case hex HMAC of the string to sign: the `Signature=` value.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_bytes(signing_key, string_to_sign))
}

/// `YYYYMMDD'T'HHMMSS'Z'` for `t` (UTC, whole seconds). Times before 1970 or after 9999
/// cannot be written in this form.
pub fn format_amz_date(t: SystemTime) -> Result<String, SigV4Error> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SigV4Error::TimeOutOfRange)?
        .as_secs();
    let days = i64::try_from(secs / SECONDS_PER_DAY).map_err(|_| SigV4Error::TimeOutOfRange)?;
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        return Err(SigV4Error::TimeOutOfRange);
    }
    let rem = secs % SECONDS_PER_DAY;
    Ok(format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// Parses an `X-Amz-Date` value, rejecting anything that is not a real UTC instant written
/// exactly as `YYYYMMDD'T'HHMMSS'Z'`.
pub fn parse_amz_date(s: &str) -> Result<SystemTime, SigV4Error> {
    let bad = || SigV4Error::MalformedDate(s.chars().take(64).collect());
    let b = s.as_bytes();
    let shape_ok =
        b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return Err(bad());
    }
    // Safe: the shape check proved these are ASCII digits.
    let num = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (y, mo, d) = (num(0..4), num(4..6), num(6..8));
    let (h, mi, sec) = (num(9..11), num(11..13), num(13..15));
    if y < 1970 || !(1..=12).contains(&mo) || d == 0 || h > 23 || mi > 59 || sec > 59 {
        return Err(bad());
    }
    let days = days_from_civil(i64::from(y), mo, d);
    // A day past the month's end (20150230) converts to another date; reject it.
    if civil_from_days(days) != (i64::from(y), mo, d) {
        return Err(bad());
    }
    let secs = u64::try_from(days).map_err(|_| bad())? * SECONDS_PER_DAY + u64::from(h * 3600 + mi * 60 + sec);
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(0);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(0);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
