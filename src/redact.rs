//! Secret redaction: every output (reports, console, errors) passes through a
//! [`Redactor`] that knows each key and token of the run.

use std::borrow::Cow;

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
    fn longest_secret_wins_and_json_is_walked() {
        let r = Redactor::new([("a".into(), "abc".into()), ("b".into(), "abcdef".into())]);
        assert_eq!(r.redact("x abcdef abc"), "x [redacted:b] [redacted:a]");
        let mut v = serde_json::json!({"k": ["abc"], "abcdef": 1});
        r.redact_json(&mut v);
        assert_eq!(v.to_string(), r#"{"[redacted:b]":1,"k":["[redacted:a]"]}"#);
        assert_eq!(r.find("zz abc"), Some("a"));
    }
}
