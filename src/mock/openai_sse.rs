//! The OpenAI mock's SSE stream, framed as vLLM frames it (and Azure, with its
//! content-filter chunks): the role chunk, one chunk per token and choice, the
//! finish reason, the usage chunk when asked for, and `[DONE]`.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::behavior::Codec;
use super::openai::{Dialect, Kind};

/// OpenAI-style SSE framing as vLLM sends it.
pub(super) struct SseCodec {
    pub(super) dialect: Dialect,
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) model: String,
    pub(super) kind: Kind,
    pub(super) finish: &'static str,
    pub(super) usage: Option<Value>,
    /// Choices generated side by side (`n`): each token goes out once per choice.
    pub(super) choices: usize,
    /// Each choice's token frame, serialised once, split where the token's text goes
    /// (built on the first token: a stream is 200 frames of which only the text changes).
    pub(super) templates: Option<Vec<Template>>,
}

/// A token frame before and after its JSON-quoted text.
pub(super) struct Template {
    before: Vec<u8>,
    after: Vec<u8>,
}

/// Stands in for the token's text while a template is serialised.
const SLOT: &str = "gateprobe-token-slot-5d1c9e";

impl SseCodec {
    fn chunk(&self, choice: Value) -> Value {
        let object = if self.kind == Kind::Chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let mut c =
            json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": [choice]});
        if self.usage.is_some() {
            c["usage"] = Value::Null;
        }
        c
    }

    /// Choice `i`'s token frame split at its text, or none if the slot's marker is not
    /// found exactly once (a model name that contains it: every frame is then built whole).
    fn template(&self, i: usize) -> Option<Template> {
        let whole = frame(&self.chunk(self.choice(i, SLOT, Value::Null)));
        let marker = format!("\"{SLOT}\"");
        let text = std::str::from_utf8(&whole).ok()?;
        let at = text.find(&marker)?;
        if text[at + 1..].contains(&marker) {
            return None;
        }
        Some(Template {
            before: whole[..at].to_vec(),
            after: whole[at + marker.len()..].to_vec(),
        })
    }

    fn choice(&self, i: usize, text: &str, fin: Value) -> Value {
        match self.kind {
            Kind::Chat => json!({"index": i, "delta": {"content": text}, "logprobs": null, "finish_reason": fin}),
            Kind::Text => json!({"index": i, "text": text, "logprobs": null, "finish_reason": fin}),
        }
    }
}

impl Codec for SseCodec {
    fn head(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.dialect == Dialect::Azure {
            // Azure's first chunk has no choices, only the prompt's filter results.
            out.push(frame(
                &json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                   "prompt_filter_results": super::azure::prompt_filter_results()}),
            ));
        }
        if self.kind == Kind::Chat {
            for i in 0..self.choices {
                let c = self.chunk(json!({"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}));
                out.push(frame(&c));
            }
        }
        out
    }

    fn token(&mut self, text: &str, last: bool) -> Bytes {
        if !last {
            if self.templates.is_none() {
                self.templates = Some((0..self.choices).map_while(|i| self.template(i)).collect());
            }
            if let Some(templates) = self.templates.as_ref().filter(|t| t.len() == self.choices) {
                let mut out = Vec::with_capacity(self.choices * (200 + text.len()));
                for t in templates {
                    out.extend_from_slice(&t.before);
                    // A string always serialises.
                    let _ = serde_json::to_writer(&mut out, text);
                    out.extend_from_slice(&t.after);
                }
                return Bytes::from(out);
            }
        }
        let fin = if last { Value::from(self.finish) } else { Value::Null };
        let one = |i: usize| frame(&self.chunk(self.choice(i, text, fin.clone())));
        if self.choices == 1 {
            return one(0);
        }
        let mut all = Vec::new();
        for i in 0..self.choices {
            all.extend_from_slice(&one(i));
        }
        Bytes::from(all)
    }

    fn tail(&mut self, _completion_tokens: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(u) = self.usage.take() {
            let object = if self.kind == Kind::Chat {
                "chat.completion.chunk"
            } else {
                "text_completion"
            };
            out.push(frame(
                &json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
                                   "choices": [], "usage": u}),
            ));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn malformed_json(&mut self) -> Bytes {
        Bytes::from(format!(
            "data: {{\"id\": \"{}\", \"choices\": [{{\"delta\": \n\n",
            self.id
        ))
    }

    fn malformed_frame(&mut self) -> Bytes {
        // The JSON without its `data: ` field name: a client reads an unknown field.
        let mut s = self
            .chunk(json!({"index": 0, "delta": {"content": "?"}, "finish_reason": null}))
            .to_string();
        s.push_str("\n\n");
        Bytes::from(s)
    }
}

fn frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(256);
    s.push_str("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(kind: Kind, model: &str, choices: usize, usage: bool) -> SseCodec {
        SseCodec {
            dialect: Dialect::Vllm,
            id: "chatcmpl-00000000000000ff".into(),
            created: 1_700_000_000,
            model: model.into(),
            kind,
            finish: "length",
            usage: usage.then(|| json!({"prompt_tokens": 1})),
            choices,
            templates: None,
        }
    }

    /// The frame every token had before templates: the chunk built and serialised whole.
    fn whole(c: &SseCodec, text: &str) -> Vec<u8> {
        (0..c.choices)
            .flat_map(|i| frame(&c.chunk(c.choice(i, text, Value::Null))).to_vec())
            .collect()
    }

    #[test]
    fn template_frames_are_the_frames_built_whole() {
        let texts = [
            " token",
            "",
            "quote \" back\\slash",
            "new\nline\ttab",
            "é 日本 🦀",
            "\u{1}\u{1f}",
        ];
        for (kind, model, choices, usage) in [
            (Kind::Chat, "m", 1, false),
            (Kind::Chat, "org/Model \"x\"", 3, true),
            (Kind::Text, "m", 1, true),
            (Kind::Text, "m", 2, false),
        ] {
            let mut c = codec(kind, model, choices, usage);
            for text in texts {
                assert_eq!(
                    c.token(text, false).to_vec(),
                    whole(&c, text),
                    "{kind:?} {model} {text:?}"
                );
            }
            assert_eq!(c.templates.as_ref().map(Vec::len), Some(choices));
        }
    }

    #[test]
    fn a_model_named_like_the_slot_gets_frames_built_whole() {
        let mut c = codec(Kind::Chat, SLOT, 1, false);
        assert_eq!(c.token("a", false).to_vec(), whole(&c, "a"));
        assert_eq!(c.templates.as_ref().map(Vec::len), Some(0));
        let last = String::from_utf8(c.token("b", true).to_vec()).unwrap();
        assert!(last.contains(r#""finish_reason":"length""#), "{last}");
    }
}
