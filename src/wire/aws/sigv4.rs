//! AWS Signature Version 4 in its header form (`AWS4-HMAC-SHA256`), as the Bedrock runtime
//! checks it: a verifier for the Bedrock mock, which knows the secret and must answer bad
//! requests with the error Bedrock would send, and a signer for the reference gateway's
//! upstream calls.
//!
//! Signer and verifier share one canonicalisation (the functions re-exported below),
//! written against the raw request as it travels on the wire: the path is signed as
//! received, encoded once more, which is why a Bedrock model id sent as
//! `mistral.mistral-7b-instruct-v0%3A2` is signed as `...v0%253A2`.

mod canonical;

pub use canonical::{
    ALGORITHM, TERMINATOR, canonical_headers, canonical_query, canonical_request, canonical_uri, credential_scope,
    format_amz_date, parse_amz_date, payload_hash, signature, signing_key, string_to_sign,
};
use hmac::Mac;
use std::fmt;
use std::time::{Duration, SystemTime};

/// The signing name of the Bedrock runtime.
pub const SERVICE: &str = "bedrock";
/// How far a request's `X-Amz-Date` may be from the server clock; AWS allows 15 minutes.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// An access key pair, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id, sent in clear in the credential scope.
    pub access_key_id: String,
    /// The secret access key; never sent.
    pub secret_access_key: String,
    /// The STS session token, sent as `X-Amz-Security-Token`, if any.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same credentials with a session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    // Debug output ends up in logs and reports; the secret and token must not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The parts of an HTTP request that SigV4 covers, exactly as they were (or will be) sent.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path as on the wire, percent-escapes untouched (`/model/a%3A1/converse`).
    pub raw_path: &'a str,
    /// The query string without `?`, as on the wire; empty if none.
    pub raw_query: &'a str,
    /// Every header as `(name, value)`, names in any case, repeats allowed.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes.
    pub body: &'a [u8],
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHeader {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The scope date, `YYYYMMDD`.
    pub date: String,
    /// The scope region.
    pub region: String,
    /// The scope service.
    pub service: String,
    /// The signed header names, lower case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature: 64 hex digits.
    pub signature: String,
}

/// The headers a request needs after [`sign`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `Authorization` value.
    pub authorization: String,
    /// The `X-Amz-Date` value.
    pub x_amz_date: String,
    /// The `X-Amz-Security-Token` value, for temporary credentials.
    pub x_amz_security_token: Option<String>,
}

impl SignedHeaders {
    /// `(name, value)` pairs to add to the request.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("authorization", self.authorization.as_str())),
            Some(("x-amz-date", self.x_amz_date.as_str())),
            self.x_amz_security_token
                .as_deref()
                .map(|t| ("x-amz-security-token", t)),
        ]
        .into_iter()
        .flatten()
    }
}

/// Why a request's signature was refused (or could not be made). Each variant maps onto the
/// error Bedrock answers with: see [`SigV4Error::error_type`] and [`SigV4Error::status`];
/// the `Display` text is Bedrock's `message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingAuthorization,
    /// An `Authorization` header but no `X-Amz-Date`.
    #[error("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")]
    MissingDate,
    /// The `Authorization` header does not parse; the text says what is wrong.
    #[error("{0}")]
    MalformedAuthorization(String),
    /// `X-Amz-Date` is not `YYYYMMDD'T'HHMMSS'Z'`.
    #[error("X-Amz-Date '{0}' is not of the form yyyyMMdd'T'HHmmss'Z'.")]
    MalformedDate(String),
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// [`sign`] was given a request without a `Host` header.
    #[error("The request has no Host header to sign.")]
    MissingHost,
    /// Unknown access key id, or a session token that does not match.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The credential scope names another region.
    #[error("Credential should be scoped to a valid region, not '{got}'. This endpoint expects '{expected}'.")]
    WrongRegion {
        /// The region this endpoint serves.
        expected: String,
        /// The region in the credential scope.
        got: String,
    },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The service this endpoint is.
        expected: String,
        /// The service in the credential scope.
        got: String,
    },
    /// The scope date is not the date part of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '{scope_date}' != '{amz_day}', from '{amz_date}'."
    )]
    DateScopeMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The first eight characters of `X-Amz-Date`.
        amz_day: String,
        /// `X-Amz-Date`.
        amz_date: String,
    },
    /// `X-Amz-Date` is older than the allowed skew.
    #[error("Signature expired: {request} is now earlier than {earliest} ({now} - {skew}.)")]
    SignatureExpired {
        /// `X-Amz-Date`.
        request: String,
        /// The oldest date accepted now.
        earliest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew, e.g. `15 min`.
        skew: String,
    },
    /// `X-Amz-Date` is further in the future than the allowed skew.
    #[error("Signature not yet current: {request} is still later than {latest} ({now} + {skew}.)")]
    SignatureNotYetCurrent {
        /// `X-Amz-Date`.
        request: String,
        /// The latest date accepted now.
        latest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew, e.g. `15 min`.
        skew: String,
    },
    /// A signed `x-amz-content-sha256` does not match the body received.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// A session token was sent but left out of `SignedHeaders`. The text is what AWS
    /// answers for headers present but not signed (documented for S3, which names the
    /// header in `HeadersNotSigned`); temporary credentials sign the token, as every AWS
    /// SDK does.
    #[error("There were headers present in the request which were not signed")]
    TokenNotSigned,
    /// The signature does not match.
    #[error("{SIGNATURE_MISMATCH}")]
    SignatureMismatch,
    /// A clock outside 1970..=9999, which `X-Amz-Date` cannot express.
    #[error("The time cannot be written as an X-Amz-Date.")]
    TimeOutOfRange,
}

impl SigV4Error {
    /// The AWS error type name, as sent in `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        use SigV4Error::*;
        match self {
            MissingAuthorization => "MissingAuthenticationTokenException",
            MissingDate | MalformedAuthorization(_) | MalformedDate(_) | HostNotSigned | MissingHost => {
                "IncompleteSignatureException"
            }
            UnrecognizedClient => "UnrecognizedClientException",
            TokenNotSigned => "AccessDeniedException",
            WrongRegion { .. }
            | WrongService { .. }
            | DateScopeMismatch { .. }
            | SignatureExpired { .. }
            | SignatureNotYetCurrent { .. }
            | PayloadHashMismatch
            | SignatureMismatch
            | TimeOutOfRange => "InvalidSignatureException",
        }
    }

    /// The full `x-amzn-ErrorType` header value. Authentication errors come from the AWS
    /// request framework rather than from Bedrock itself, hence the `coral.service`
    /// namespace instead of `com.amazon.bedrock`.
    pub fn x_amzn_error_type(&self) -> String {
        format!(
            "{}:http://internal.amazon.com/coral/com.amazon.coral.service/",
            self.error_type()
        )
    }

    /// The HTTP status: every authentication failure is a 403.
    pub fn status(&self) -> u16 {
        403
    }

    /// The JSON body, `{"message": "..."}`.
    pub fn body_json(&self) -> String {
        serde_json::json!({ "message": self.to_string() }).to_string()
    }
}

/// A malformed-header error; the message (which quotes the offending component) is cut
/// at 512 bytes, so a hostile header cannot make it as large as itself.
fn malformed(msg: impl Into<String>) -> SigV4Error {
    let mut msg = msg.into();
    if msg.len() > 512 {
        let mut cut = 512;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    SigV4Error::MalformedAuthorization(msg)
}

/// Parses an `Authorization` header. Components may come in any order, separated by commas
/// and/or whitespace; each must appear exactly once.
pub fn parse_authorization(header: &str) -> Result<AuthHeader, SigV4Error> {
    let rest = header
        .trim()
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with([' ', '\t']))
        .ok_or_else(|| malformed(format!("Authorization header must start with '{ALGORITHM} '.")))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            malformed(format!(
                "Authorization component '{part}' is not of the form Key=Value."
            ))
        })?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(malformed(format!("Unexpected Authorization component '{key}'."))),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format!(
                "Authorization header has more than one '{key}' parameter."
            )));
        }
    }
    fn require<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, SigV4Error> {
        v.filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(format!("Authorization header requires '{name}' parameter.")))
    }
    let credential = require(credential, "Credential")?;
    let signed = require(signed, "SignedHeaders")?;
    let signature = require(signature, "Signature")?;

    let scope: Vec<&str> = credential.splitn(6, '/').collect();
    let &[akid, date, region, service, terminator] = scope.as_slice() else {
        return Err(malformed(format!(
            "Credential must be <AccessKeyId>/<yyyyMMdd>/<region>/<service>/{TERMINATOR}, got '{credential}'."
        )));
    };
    if akid.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed(format!("Credential '{credential}' has an empty element.")));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "Credential date '{date}' is not of the form yyyyMMdd."
        )));
    }
    if terminator != TERMINATOR {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(malformed(format!("SignedHeaders '{signed}' has an empty header name.")));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("Signature must be 64 hexadecimal digits."));
    }
    Ok(AuthHeader {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
    })
}

/// The value of header `name`; `None` if absent, an error if it is repeated (a repeated
/// `Authorization` or `X-Amz-Date` is ambiguous, so it is refused rather than guessed at).
fn single_header<'a>(headers: &[(&str, &'a str)], name: &str) -> Result<Option<&'a str>, SigV4Error> {
    let mut found = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v);
    let first = found.next();
    if found.next().is_some() {
        return Err(malformed(format!("The request has more than one '{name}' header.")));
    }
    Ok(first.map(str::trim))
}

/// Compares session tokens through their digests, so the time taken says nothing about
/// how long a prefix of a guessed token was right.
fn same_token(a: Option<&str>, b: Option<&str>) -> bool {
    use sha2::{Digest, Sha256};
    match (a, b) {
        (Some(a), Some(b)) => Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes()),
        (a, b) => a.is_none() && b.is_none(),
    }
}

fn describe_skew(skew: Duration) -> String {
    match skew.as_secs() {
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What a verifying endpoint knows: its one key pair, its region and service, and how much
/// clock skew it tolerates.
#[derive(Clone, Debug)]
pub struct Verifier<'a> {
    /// The only credentials this endpoint accepts.
    pub credentials: &'a Credentials,
    /// The region this endpoint serves.
    pub region: &'a str,
    /// The signing name, [`SERVICE`] for Bedrock.
    pub service: &'a str,
    /// The largest accepted distance between `X-Amz-Date` and the clock.
    pub max_skew: Duration,
}

impl Verifier<'_> {
    /// Checks `req` as of `now`, in the order AWS does: presence and syntax first, then the
    /// key, the scope, the clock, and finally the signature itself.
    pub fn verify(&self, req: &RequestParts<'_>, now: SystemTime) -> Result<(), SigV4Error> {
        let auth = single_header(req.headers, "authorization")?.ok_or(SigV4Error::MissingAuthorization)?;
        let auth = parse_authorization(auth)?;
        let amz_date = single_header(req.headers, "x-amz-date")?.ok_or(SigV4Error::MissingDate)?;
        let request_time = parse_amz_date(amz_date)?;

        if auth.access_key_id != self.credentials.access_key_id {
            return Err(SigV4Error::UnrecognizedClient);
        }
        let token = single_header(req.headers, "x-amz-security-token")?;
        if !same_token(token, self.credentials.session_token.as_deref()) {
            return Err(SigV4Error::UnrecognizedClient);
        }
        if auth.date != amz_date[..8] {
            return Err(SigV4Error::DateScopeMismatch {
                scope_date: auth.date,
                amz_day: amz_date[..8].to_owned(),
                amz_date: amz_date.to_owned(),
            });
        }
        if auth.region != self.region {
            return Err(SigV4Error::WrongRegion {
                expected: self.region.to_owned(),
                got: auth.region,
            });
        }
        if auth.service != self.service {
            return Err(SigV4Error::WrongService {
                expected: self.service.to_owned(),
                got: auth.service,
            });
        }
        self.check_skew(amz_date, request_time, now)?;
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(SigV4Error::HostNotSigned);
        }
        if token.is_some() && !auth.signed_headers.iter().any(|h| h == "x-amz-security-token") {
            return Err(SigV4Error::TokenNotSigned);
        }

        // A signed x-amz-content-sha256 replaces the body hash in the canonical request; when
        // it claims a hash, the body must have that hash (other values such as
        // UNSIGNED-PAYLOAD are taken as the signer chose them).
        let body_hash = payload_hash(req.body);
        let payload = match single_header(req.headers, "x-amz-content-sha256")? {
            Some(h) if auth.signed_headers.iter().any(|s| s == "x-amz-content-sha256") => {
                let is_hash = h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                if is_hash && !h.eq_ignore_ascii_case(&body_hash) {
                    return Err(SigV4Error::PayloadHashMismatch);
                }
                h.to_owned()
            }
            _ => body_hash,
        };
        let creq = canonical_request(
            req.method,
            &canonical_uri(req.raw_path),
            &canonical_query(req.raw_query),
            &canonical_headers(req.headers, &auth.signed_headers),
            &auth.signed_headers.join(";"),
            &payload,
        );
        let sts = string_to_sign(
            amz_date,
            &credential_scope(&auth.date, self.region, self.service),
            &creq,
        );
        let key = signing_key(
            &self.credentials.secret_access_key,
            &auth.date,
            self.region,
            self.service,
        );
        // parse_authorization guaranteed 64 hex digits.
        let provided = hex::decode(&auth.signature).map_err(|_| SigV4Error::SignatureMismatch)?;
        // verify_slice compares in constant time, so timing reveals nothing about how much
        // of a forged signature was right.
        canonical::hmac(&key, sts.as_bytes())
            .verify_slice(&provided)
            .map_err(|_| SigV4Error::SignatureMismatch)
    }

    fn check_skew(&self, amz_date: &str, request_time: SystemTime, now: SystemTime) -> Result<(), SigV4Error> {
        let show = |t: Option<SystemTime>| {
            t.and_then(|t| format_amz_date(t).ok())
                .unwrap_or_else(|| "?".to_owned())
        };
        match now.duration_since(request_time) {
            Ok(age) if age > self.max_skew => Err(SigV4Error::SignatureExpired {
                request: amz_date.to_owned(),
                earliest: show(now.checked_sub(self.max_skew)),
                now: show(Some(now)),
                skew: describe_skew(self.max_skew),
            }),
            Err(ahead) if ahead.duration() > self.max_skew => Err(SigV4Error::SignatureNotYetCurrent {
                request: amz_date.to_owned(),
                latest: show(now.checked_add(self.max_skew)),
                now: show(Some(now)),
                skew: describe_skew(self.max_skew),
            }),
            _ => Ok(()),
        }
    }
}

/// Verifies a Bedrock request signed for `region` with `credentials`, as of `now`.
pub fn verify(
    req: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    Verifier {
        credentials,
        region,
        service: SERVICE,
        max_skew,
    }
    .verify(req, now)
}

/// Signs a request to Bedrock in `region` as of `now`. The signed headers are
/// `content-type` (when the request has one), `host` (required), `x-amz-date` and, for
/// temporary credentials, `x-amz-security-token`; other headers may be changed by proxies
/// and are left out, as the AWS SDKs do.
pub fn sign(
    req: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<SignedHeaders, SigV4Error> {
    sign_for_service(req, credentials, region, SERVICE, now)
}

/// [`sign`] for another signing name.
pub fn sign_for_service(
    req: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<SignedHeaders, SigV4Error> {
    let amz_date = format_amz_date(now)?;
    let date = &amz_date[..8];
    if !req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        return Err(SigV4Error::MissingHost);
    }
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("host"))
        .copied()
        .collect();
    headers.push(("x-amz-date", &amz_date));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token));
    }
    // Sorted, as SignedHeaders must be; repeats of one name are listed once.
    let mut names: Vec<String> = headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let signed_headers = names.join(";");

    let creq = canonical_request(
        req.method,
        &canonical_uri(req.raw_path),
        &canonical_query(req.raw_query),
        &canonical_headers(&headers, &names),
        &signed_headers,
        &payload_hash(req.body),
    );
    let scope = credential_scope(date, region, service);
    let sig = signature(
        &signing_key(&credentials.secret_access_key, date, region, service),
        &string_to_sign(&amz_date, &scope, &creq),
    );
    Ok(SignedHeaders {
        authorization: format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={sig}",
            credentials.access_key_id
        ),
        x_amz_date: amz_date,
        x_amz_security_token: credentials.session_token.clone(),
    })
}

#[cfg(test)]
mod tests;
