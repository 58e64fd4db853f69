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
}

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
        let fin = if last { Value::from(self.finish) } else { Value::Null };
        let one = |i: usize| {
            frame(&self.chunk(match self.kind {
                Kind::Chat => json!({"index": i, "delta": {"content": text}, "logprobs": null, "finish_reason": fin}),
                Kind::Text => json!({"index": i, "text": text, "logprobs": null, "finish_reason": fin}),
            }))
        };
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
