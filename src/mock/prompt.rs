//! The prompt text a model request carries, read the way the mocks count it: OpenAI
//! chat messages (a string or a list of text parts), a completion prompt, and
//! Converse or Anthropic content blocks. Token ids and images have no text to count.

use serde_json::Value;

/// A chat message: its role and its text (a string, or a list of parts).
#[derive(serde::Deserialize)]
pub(super) struct MessageIn<'a> {
    #[serde(default, borrow)]
    pub(super) role: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) content: Option<PromptIn<'a>>,
}

/// Text as a request carries it: a string, a list of strings or of `{"text"}` parts,
/// or anything else (token ids), which has no text to count.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum PromptIn<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<PartIn<'a>>),
    Other(serde::de::IgnoredAny),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum PartIn<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Part {
        #[serde(default, borrow)]
        text: Option<std::borrow::Cow<'a, str>>,
    },
    Other(serde::de::IgnoredAny),
}

impl PromptIn<'_> {
    /// The tokens of its text, as `counter` counts them.
    pub(super) fn tokens(&self, counter: &crate::tokens::Counter) -> u64 {
        match self {
            PromptIn::Text(t) => counter.count(t),
            PromptIn::Parts(parts) => parts
                .iter()
                .map(|p| match p {
                    PartIn::Text(t) | PartIn::Part { text: Some(t) } => counter.count(t),
                    _ => 0,
                })
                .sum(),
            PromptIn::Other(_) => 0,
        }
    }
}

/// The tokens of a message's text: a string, or `[{"text": ...}]` blocks (Converse,
/// Anthropic messages and `system`).
pub(super) fn text_tokens(counter: &crate::tokens::Counter, content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => counter.count(s),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(|t| counter.count(t))
            .sum(),
        _ => 0,
    }
}
