//! Secret redaction: every output (reports, console, errors) passes through a
//! [`Redactor`] that knows each key and token of the run.

mod forms;
mod names;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use forms::Matcher;
pub use forms::{MIN_PREFIX, forms_of, public_prefix};
pub use names::is_secret_name;

/// Every secret of the scenarios this process loaded, for the panic hook.
static PROCESS_SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Makes `secrets` known to the panic hook (see [`install_panic_hook`]).
pub fn register(secrets: &[(String, String)]) {
    if let Ok(mut all) = PROCESS_SECRETS.write() {
        all.extend(secrets.iter().filter(|(_, v)| !v.is_empty()).cloned());
    }
}

/// Replaces the default panic message with one that names the bug's place and has
/// every registered secret redacted: a panic's message may quote any value, keys
/// included. (`RUST_BACKTRACE` still adds a backtrace, which holds no values.)
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        eprintln!("{}", panic_report(&payload, &at));
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

/// The text the panic hook prints. When the secrets cannot be read (the panic came
/// while they were being written), the message is left out rather than risked.
fn panic_report(message: &str, at: &str) -> String {
    let message = match PROCESS_SECRETS.try_read() {
        Ok(all) => Redactor::new(all.iter().cloned()).redact(message).into_owned(),
        Err(_) => "(message withheld: secrets unavailable)".into(),
    };
    format!(
        "gateprobe: internal error{at}: {message}\n  = this is a bug in gateprobe; please report it with the command that led here"
    )
}

/// Query parameters whose values are credentials (names compared without case):
/// API keys, OAuth and session tokens, signatures (Azure SAS, AWS presigned URLs).
const SECRET_QUERY_NAMES: &[&str] = &[
    "key",
    "api-key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "id_token",
    "auth",
    "secret",
    "client_secret",
    "password",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
];

/// The shortest URL password taken as a secret. Every occurrence of a secret is
/// replaced in every output, so a very short one would mangle unrelated text.
const MIN_URL_PASSWORD: usize = 4;
/// The shortest query value taken as a secret: real keys, tokens and signatures are
/// long, and short values of parameters so named (`sig=1`) are not credentials.
const MIN_QUERY_SECRET: usize = 8;

/// The credentials a URL carries, as `(label, value)` pairs for a [`Redactor`]: the
/// password of its user info (`http://user:PASSWORD@host`) and the values of
/// credential query parameters (`?api-key=…`, `&sig=…`), exactly as written in `url`.
pub fn url_secrets(label: &str, url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && password.len() >= MIN_URL_PASSWORD
    {
        out.push((format!("{label} password"), password.to_owned()));
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for (name, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if value.len() >= MIN_QUERY_SECRET && SECRET_QUERY_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n)) {
                out.push((format!("{label} {name}"), value.to_owned()));
            }
        }
    }
    out
}

/// `url` with the credentials it carries (see [`url_secrets`]) redacted, for display.
pub fn display_url(url: &str) -> String {
    Redactor::new(url_secrets("URL", url)).redact(url).into_owned()
}

/// The mark of text cut short for display.
const CUT: char = '…';
/// The shortest start of a secret before a cut mark that is redacted: a shorter one
/// gives little away and would match ordinary text too often.
pub const MIN_PARTIAL: usize = 4;

/// Replaces known secret values with `[redacted:<label>]`, in every form a text can
/// give them ([`forms`]): as written, JSON-escaped, percent-encoded, base64 or
/// base64url (also inside a longer encoded value), and any start of one of those of
/// [`forms::MIN_PREFIX`] characters or more.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
    matcher: Option<Arc<Matcher>>,
}

impl Redactor {
    /// A redactor for `(label, value)` pairs. Where two secrets overlap in a text, the
    /// redaction covers both and is named after the longer one.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut unique: Vec<(String, String)> = Vec::new();
        for (label, value) in secrets {
            if !value.is_empty() && !unique.iter().any(|(_, v)| *v == value) {
                unique.push((label, value));
            }
        }
        unique.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
        let matcher = Matcher::new(unique.iter().map(|(_, v)| v.as_str())).map(Arc::new);
        Redactor {
            secrets: unique,
            matcher,
        }
    }

    /// Whether it knows no secret at all.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn spans(&self, text: &[u8]) -> Vec<forms::Span> {
        self.matcher.as_ref().map(|m| m.spans(text)).unwrap_or_default()
    }

    /// `text` with every secret replaced, in any of its forms; also the start of one
    /// cut short for display: text is cut at a character count and marked `…` there,
    /// so the start of a secret (its first [`MIN_PARTIAL`] characters or more) right
    /// before a `…` is replaced too.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.spans(text.as_bytes());
        let mut out = if spans.is_empty() {
            Cow::Borrowed(text)
        } else {
            let mut o = String::with_capacity(text.len());
            let mut at = 0;
            for s in spans {
                o.push_str(&text[at..s.start]);
                o.push_str(&format!("[redacted:{}]", self.secrets[s.secret].0));
                at = s.end;
            }
            o.push_str(&text[at..]);
            Cow::Owned(o)
        };
        if out.contains(CUT)
            && let Some(cut) = self.redact_cut_prefixes(&out)
        {
            out = Cow::Owned(cut);
        }
        out
    }

    /// Replaces the starts of secrets that end right before a cut mark.
    fn redact_cut_prefixes(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut pieces = text.split(CUT).peekable();
        while let Some(piece) = pieces.next() {
            if pieces.peek().is_none() {
                out.push_str(piece);
                break;
            }
            // The longest start of any secret that this piece ends with.
            let hit = self
                .secrets
                .iter()
                .filter_map(|(label, value)| {
                    let len = value
                        .char_indices()
                        .map(|(i, _)| i)
                        .skip(MIN_PARTIAL)
                        .filter(|&i| piece.ends_with(&value[..i]))
                        .max()?;
                    Some((len, label))
                })
                .max_by_key(|(len, _)| *len);
            match hit {
                Some((len, label)) => {
                    out.push_str(&piece[..piece.len() - len]);
                    out.push_str(&format!("[redacted:{label}]"));
                    changed = true;
                }
                None => out.push_str(piece),
            }
            out.push(CUT);
        }
        changed.then_some(out)
    }

    /// The label of the first secret `text` holds in any form, if any.
    pub fn find(&self, text: &str) -> Option<&str> {
        self.spans(text.as_bytes())
            .first()
            .map(|s| self.secrets[s.secret].0.as_str())
    }

    /// The labels of every secret `bytes` hold in any form, each once, in the order
    /// the secrets were given (longest first).
    pub fn labels_in(&self, bytes: &[u8]) -> Vec<String> {
        let mut hit = vec![false; self.secrets.len()];
        for s in self.spans(bytes) {
            hit[s.secret] = true;
        }
        self.secrets
            .iter()
            .zip(hit)
            .filter(|(_, h)| *h)
            .map(|((l, _), _)| l.clone())
            .collect()
    }

    /// A scanner that finds these secrets in a stream of bytes read in pieces.
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner {
            redactor: self,
            window: Vec::new(),
            found: vec![false; self.secrets.len()],
        }
    }

    /// Redacts the string values inside a JSON value, except those of the fields named
    /// in `keep` (values that are structure, not text: enum variants, encodings).
    /// Object keys are names and stay as they are.
    pub fn redact_json_values(&self, v: &mut serde_json::Value, keep: &[&str]) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json_values(x, keep)),
            Value::Object(o) => {
                for (k, val) in o.iter_mut() {
                    if !(keep.contains(&k.as_str()) && val.is_string()) {
                        self.redact_json_values(val, keep);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Finds secrets in a stream read in pieces (a reply body): every secret whose form
/// lies across two pieces is found too, and no match is decided before the text it
/// could span has arrived. Memory: the longest form, whatever the stream's length.
#[derive(Debug)]
pub struct Scanner<'r> {
    redactor: &'r Redactor,
    window: Vec<u8>,
    found: Vec<bool>,
}

impl Scanner<'_> {
    /// Scans the next piece.
    pub fn feed(&mut self, piece: &[u8]) {
        let Some(m) = self.redactor.matcher.as_deref() else {
            return;
        };
        self.window.extend_from_slice(piece);
        let keep = m.reach();
        if self.window.len() <= keep {
            return;
        }
        // Matches starting before `decided` lie wholly in the window.
        let decided = self.window.len() - keep;
        for s in m.spans(&self.window) {
            if s.start < decided {
                self.found[s.secret] = true;
            }
        }
        self.window.drain(..decided);
    }

    /// The labels of the secrets found, once the stream has ended.
    pub fn finish(mut self) -> Vec<String> {
        for s in self.redactor.spans(&self.window) {
            self.found[s.secret] = true;
        }
        self.redactor
            .secrets
            .iter()
            .zip(self.found)
            .filter(|(_, f)| *f)
            .map(|((l, _), _)| l.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_secrets_and_the_rest_is_not() {
        let s = url_secrets(
            "gateway.url",
            "https://svc:p%40ss@gw.internal:8443/v1?api-version=2024-10-21&api-key=k-123456789&X-Amz-Signature=abcdef0123#frag",
        );
        assert_eq!(
            s,
            [
                ("gateway.url password".to_owned(), "p%40ss".to_owned()),
                ("gateway.url api-key".to_owned(), "k-123456789".to_owned()),
                ("gateway.url X-Amz-Signature".to_owned(), "abcdef0123".to_owned()),
            ]
        );
        assert!(url_secrets("u", "http://user@host/a@b?x=1&token=").is_empty());
        assert!(url_secrets("u", "127.0.0.1:5052").is_empty());
        // Names that merely contain a credential word, and values too short to be one.
        assert!(url_secrets("u", "http://u:pw@h/?max_tokens=12345678&tokenizer=abcdefgh&sig=1").is_empty());
    }

    #[test]
    fn panic_reports_redact_registered_secrets() {
        register(&[("backends.x.api_key".into(), "sk-panic-3b9d1e".into())]);
        let r = panic_report("bad key sk-panic-3b9d1e in request", " at src/x.rs:1:2");
        assert!(!r.contains("sk-panic-3b9d1e"), "{r}");
        assert!(
            r.contains("[redacted:backends.x.api_key]") && r.contains("src/x.rs:1:2"),
            "{r}"
        );
    }

    #[test]
    fn the_start_of_a_secret_cut_for_display_is_redacted() {
        let r = Redactor::new([("k".into(), "sk-live-0123456789".into())]);
        // Cut inside the key, then more text after the mark.
        assert_eq!(
            r.redact("HTTP 422: {\"model_api_key\": \"sk-live-01…  (and more)"),
            "HTTP 422: {\"model_api_key\": \"[redacted:k]…  (and more)"
        );
        assert_eq!(r.redact("a sk-l… b sk-live-0…"), "a [redacted:k]… b [redacted:k]…");
        // Too short a start, or not at the cut: left alone.
        assert_eq!(r.redact("tasks… sk-… sk-li"), "tasks… sk-… sk-li");
        assert_eq!(r.redact("nothing cut"), "nothing cut");
    }

    #[test]
    fn longest_secret_wins_and_json_is_walked() {
        let r = Redactor::new([("a".into(), "abc".into()), ("b".into(), "abcdef".into())]);
        assert_eq!(r.redact("x abcdef abc"), "x [redacted:b] [redacted:a]");
        let mut v = serde_json::json!({"k": ["abc"], "abcdef": "abcdef", "status": "abc"});
        r.redact_json_values(&mut v, &["status"]);
        assert_eq!(
            v.to_string(),
            r#"{"abcdef":"[redacted:b]","k":["[redacted:a]"],"status":"abc"}"#
        );
        assert_eq!(r.find("zz abc"), Some("a"));
    }

    #[test]
    fn encoded_and_cut_secrets_are_redacted() {
        use base64::Engine as _;
        let key = "sk-gw/3b9d1e7f20";
        let r = Redactor::new([("k".into(), key.into())]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{key}"));
        for text in [
            format!("basic {b64}"),
            // Eight characters past the public `sk-`, then cut.
            "k=sk-gw/3b9d1e...".to_owned(),
            "{\"key\": \"sk-gw\\/3b9d1e7f20\"}".to_owned(),
            "?key=sk-gw%2F3b9d1e7f20&x".to_owned(),
        ] {
            let out = r.redact(&text);
            assert!(out.contains("[redacted:k]"), "{text} -> {out}");
            assert_eq!(r.find(&text), Some("k"), "{text}");
        }
    }

    #[test]
    fn a_scanner_finds_secrets_across_pieces() {
        let r = Redactor::new([
            ("a".into(), "secret-value-123456".into()),
            ("b".into(), "other-key-98765".into()),
        ]);
        let text = format!("{}secret-value-123456{}", "x".repeat(5000), "y".repeat(3));
        for piece in [1, 7, 64, 5000] {
            let mut s = r.scanner();
            for chunk in text.as_bytes().chunks(piece) {
                s.feed(chunk);
            }
            assert_eq!(s.finish(), ["a"], "pieces of {piece}");
        }
        let mut s = r.scanner();
        s.feed(b"nothing here");
        assert!(s.finish().is_empty());
    }
}
