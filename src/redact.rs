//! Secret redaction: every output (reports, console, errors) passes through a
//! [`Redactor`] that knows each key and token of the run.

use std::borrow::Cow;
use std::sync::RwLock;

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

/// Replaces known secret values with `[redacted:<label>]`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for `(label, value)` pairs. Longer values are replaced first so a
    /// secret that contains another is not half-redacted.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut secrets: Vec<(String, String)> = secrets.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
        secrets.dedup_by(|a, b| a.1 == b.1);
        Redactor { secrets }
    }

    /// `text` with every secret replaced, also one cut short for display: text is
    /// cut at a character count and marked `…` there, so the start of a secret (its
    /// first [`MIN_PARTIAL`] characters or more) right before a `…` is replaced too.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (label, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &format!("[redacted:{label}]")));
            }
        }
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

    /// The label of the first secret `text` contains, if any.
    pub fn find(&self, text: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(_, v)| text.contains(v.as_str()))
            .map(|(l, _)| l.as_str())
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
}
