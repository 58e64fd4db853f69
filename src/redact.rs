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

/// Query parameters whose values are credentials: names containing one of these
/// (case-insensitive), e.g. `api-key`, `access_token`, `X-Amz-Signature`, `sig`.
const SECRET_QUERY_NAMES: &[&str] = &["key", "token", "secret", "sig", "password", "auth", "credential"];

/// The credentials a URL carries, as `(label, value)` pairs for a [`Redactor`]: the
/// password of its user info (`http://user:PASSWORD@host`) and the values of
/// credential-looking query parameters, exactly as written in `url`.
pub fn url_secrets(label: &str, url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
    {
        out.push((format!("{label} password"), password.to_owned()));
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for (name, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let lower = name.to_ascii_lowercase();
            if !value.is_empty() && SECRET_QUERY_NAMES.iter().any(|n| lower.contains(n)) {
                out.push((format!("{label} {name}"), value.to_owned()));
            }
        }
    }
    out
}

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

    /// `text` with every secret replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (label, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &format!("[redacted:{label}]")));
            }
        }
        out
    }

    /// The label of the first secret `text` contains, if any.
    pub fn find(&self, text: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(_, v)| text.contains(v.as_str()))
            .map(|(l, _)| l.as_str())
    }

    /// Redacts every string inside a JSON value, keys included.
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            Value::Object(o) => {
                let entries: Vec<(String, Value)> = std::mem::take(o).into_iter().collect();
                for (k, mut val) in entries {
                    self.redact_json(&mut val);
                    o.insert(self.redact(&k).into_owned(), val);
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
            "https://svc:p%40ss@gw.internal:8443/v1?api-version=2024-10-21&api-key=k-123&X-Amz-Signature=abc#frag",
        );
        assert_eq!(
            s,
            [
                ("gateway.url password".to_owned(), "p%40ss".to_owned()),
                ("gateway.url api-key".to_owned(), "k-123".to_owned()),
                ("gateway.url X-Amz-Signature".to_owned(), "abc".to_owned()),
            ]
        );
        assert!(url_secrets("u", "http://user@host/a@b?x=1&token=").is_empty());
        assert!(url_secrets("u", "127.0.0.1:5052").is_empty());
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
    fn longest_secret_wins_and_json_is_walked() {
        let r = Redactor::new([("a".into(), "abc".into()), ("b".into(), "abcdef".into())]);
        assert_eq!(r.redact("x abcdef abc"), "x [redacted:b] [redacted:a]");
        let mut v = serde_json::json!({"k": ["abc"], "abcdef": 1});
        r.redact_json(&mut v);
        assert_eq!(v.to_string(), r#"{"[redacted:b]":1,"k":["[redacted:a]"]}"#);
        assert_eq!(r.find("zz abc"), Some("a"));
    }
}
