//! The AI gateway's own requests to model servers, taken from a transcript
//! (`gateprobe run --record DIR`) so that `kind: direct` can send them again to a real
//! endpoint: a chat template or a context window that refuses what the gateway really
//! sends shows with the server's own error.
//!
//! A transcript keeps the gateway's prompt texts as their length (`«N chars»`): each is
//! sent again as that many characters of filler, so the roles, the sizes, `max_tokens`,
//! `stop` and the other parameters are the gateway's, the words are not.

use serde_json::Value;

/// One request the gateway sent a model server for a feature.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayRequest {
    /// The Duo feature it served.
    pub feature: String,
    /// A chat completion (`/chat/completions`), or a text completion (`/completions`).
    pub chat: bool,
    /// The body, prompt texts filled back in to their length.
    pub body: Value,
}

impl ReplayRequest {
    /// The path under the endpoint.
    pub fn path(&self) -> &'static str {
        if self.chat { "chat/completions" } else { "completions" }
    }

    /// Whether it asks for a stream.
    pub fn stream(&self) -> bool {
        self.body["stream"].as_bool() == Some(true)
    }

    /// The message roles, in order (empty for a text completion).
    pub fn roles(&self) -> Vec<&str> {
        self.body["messages"]
            .as_array()
            .map(|ms| ms.iter().map(|m| m["role"].as_str().unwrap_or("?")).collect())
            .unwrap_or_default()
    }

    /// Characters of prompt text.
    pub fn prompt_chars(&self) -> usize {
        fn chars(v: &Value) -> usize {
            match v {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.iter().map(|p| chars(&p["text"])).sum(),
                _ => 0,
            }
        }
        match self.body["messages"].as_array() {
            Some(ms) => ms.iter().map(|m| chars(&m["content"])).sum(),
            None => chars(&self.body["prompt"]),
        }
    }
}

/// Filler that tokenizes to about one token per four characters.
fn filler(n: usize) -> String {
    let mut s = " the".repeat(n / 4);
    s.push_str(&" the"[..n % 4]);
    s
}

/// `text` with every `«N chars»` replaced by N characters of filler.
fn expand(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('«') {
        out.push_str(&rest[..i]);
        let after = &rest[i + '«'.len_utf8()..];
        let parsed = after.find('»').and_then(|j| {
            after[..j]
                .strip_suffix(" chars")
                .and_then(|d| d.parse::<usize>().ok())
                .map(|n| (j, n))
        });
        match parsed {
            // Bounded: a transcript's texts are at most a few hundred thousand characters.
            Some((j, n)) if n <= 4_000_000 => {
                out.push_str(&filler(n));
                rest = &after[j + '»'.len_utf8()..];
            }
            _ => {
                out.push('«');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn expand_all(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('«') => *s = expand(s),
        Value::Array(a) => a.iter_mut().for_each(expand_all),
        Value::Object(o) => o.values_mut().for_each(expand_all),
        _ => {}
    }
}

/// The OpenAI-compatible requests (vLLM, Azure) the mocks received in a transcript,
/// per feature the largest of each kind (chat or text, streamed or not).
pub fn from_transcript(t: &Value) -> Result<Vec<ReplayRequest>, String> {
    if t["format"].as_str() != Some("gateprobe-transcript") {
        return Err("not a gateprobe transcript (no `\"format\": \"gateprobe-transcript\"`)".into());
    }
    let exchanges = t["exchanges"].as_array().ok_or("the transcript has no `exchanges`")?;
    let mut out: Vec<ReplayRequest> = Vec::new();
    for x in exchanges {
        let Some(feature) = x.pointer("/probe/feature").and_then(Value::as_str) else {
            continue;
        };
        for hit in x["backend"].as_array().into_iter().flatten() {
            let path = hit["path"].as_str().unwrap_or_default();
            let chat = path.ends_with("/chat/completions");
            if !chat && !path.ends_with("/completions") {
                continue;
            }
            let Ok(mut body) = serde_json::from_str::<Value>(hit["body"].as_str().unwrap_or_default()) else {
                continue;
            };
            if !body.is_object() {
                continue;
            }
            expand_all(&mut body);
            let r = ReplayRequest {
                feature: feature.to_owned(),
                chat,
                body,
            };
            let same = out
                .iter()
                .position(|o| o.feature == r.feature && o.chat == r.chat && o.stream() == r.stream());
            match same {
                Some(i) if out[i].prompt_chars() >= r.prompt_chars() => {}
                Some(i) => out[i] = r,
                None => out.push(r),
            }
        }
    }
    if out.is_empty() {
        return Err("the transcript holds no request to an OpenAI-compatible model server".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lengths_come_back_as_filler_of_that_length() {
        assert_eq!(expand("a «10 chars» b"), format!("a {} b", filler(10)));
        assert_eq!(filler(10).chars().count(), 10);
        assert_eq!(expand("«x chars» «"), "«x chars» «");
    }

    #[test]
    fn the_largest_request_of_each_kind_is_kept() {
        let hit = |n: usize, stream: bool| {
            json!({"path": "/v1/chat/completions",
                   "body": json!({"messages": [{"role": "system", "content": format!("«{n} chars»")}], "stream": stream}).to_string()})
        };
        let t = json!({"format": "gateprobe-transcript", "exchanges": [
            {"probe": {"feature": "duo_chat"}, "backend": [hit(10, true), hit(30, true), hit(5, false)]},
            {"probe": {"feature": "duo_chat"}, "backend": [{"path": "/model/x/converse", "body": "{}"}]},
        ]});
        let r = from_transcript(&t).expect("requests");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].prompt_chars(), 30);
        assert_eq!(r[0].roles(), vec!["system"]);
        assert!(!r[1].stream());
        assert!(from_transcript(&json!({"format": "other"})).is_err());
    }
}
