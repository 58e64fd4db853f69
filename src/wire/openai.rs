//! OpenAI-compatible servers (vLLM) and the gateways in front of them: error bodies,
//! and what a load run reads of a stream chunk.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// The message of an error body: an OpenAI-style `error.message`, an `error` string
/// (vLLM's 401, the AI gateway's auth errors), FastAPI's `detail`, or a `message`.
pub fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    match (v.get("error"), v.get("detail")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (Some(e @ Value::Object(_)), _) => e.get("message").and_then(Value::as_str).map(str::to_owned),
        (_, Some(Value::String(d))) => Some(d.clone()),
        _ => v.get("message").and_then(Value::as_str).map(str::to_owned),
    }
}

/// What a load run needs of one OpenAI stream chunk (`data:` of an SSE event).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkSummary {
    /// The first choice's `delta.content` (or, for a text completion, its `text`) is a
    /// non-empty string: the chunk is a token event.
    pub token: bool,
    /// The chunk has an `error` member (of any value).
    pub error: bool,
    /// Its `usage`, when present and not null.
    pub usage: Option<Value>,
}

/// Reads a stream chunk without building a JSON tree: a token event is summarised in
/// one borrowing pass (this runs once per token of every stream under load). Returns
/// `None` when `data` is not JSON; JSON that is not an object summarises as nothing.
///
/// Agrees with reading the chunk as a [`Value`]: `/choices/0/delta/content`, or when
/// that is absent `/choices/0/text`, as a string; `error` by presence; a duplicate or
/// mistyped member takes the tree's reading (its last value wins).
pub fn chunk_summary(data: &str) -> Option<ChunkSummary> {
    if !data.trim_start().starts_with('{') {
        return tree_summary(data);
    }
    let Ok(c) = serde_json::from_str::<Chunk<'_>>(data) else {
        return tree_summary(data);
    };
    let first = c.choices.as_ref().and_then(|v| v.first());
    let text = first.and_then(|f| match &f.delta {
        Some(d) => d.content.or(f.text),
        None => f.text,
    });
    let usage = match c.usage {
        Some(u) if u.get() != "null" => serde_json::from_str(u.get()).ok(),
        _ => None,
    };
    Some(ChunkSummary {
        // A JSON string is empty only as `""`; escapes make it longer, never shorter.
        token: text.is_some_and(|t| t.get().starts_with('"') && t.get().len() > 2),
        error: c.error.is_some(),
        usage,
    })
}

/// [`chunk_summary`] by way of a JSON tree: the reading the fast path must agree with.
fn tree_summary(data: &str) -> Option<ChunkSummary> {
    let v: Value = serde_json::from_str(data).ok()?;
    let text = v
        .pointer("/choices/0/delta/content")
        .or_else(|| v.pointer("/choices/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(ChunkSummary {
        token: !text.is_empty(),
        error: v.get("error").is_some(),
        usage: v.get("usage").filter(|u| !u.is_null()).cloned(),
    })
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    #[serde(borrow, default, deserialize_with = "present")]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    content: Option<&'a RawValue>,
}

/// A member that is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_reads_as_its_json_tree_reads() {
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":null},"text":"x"}]}"#,
            r#"{"choices":[{"index":0,"delta":null,"text":"x"}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"text":"x"}]}"#,
            r#"{"choices":[{"index":0,"text":"\n"}]}"#,
            r#"{"choices":[{"index":0,"text":5}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":""}},{"delta":{"content":"b"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            r#"{"choices":[],"usage":null}"#,
            r#"{"choices":null}"#,
            r#"{"choices":{"0":{"text":"x"}}}"#,
            r#"{"choices":"x"}"#,
            r#"{"error":null}"#,
            r#"{"error":{"message":"boom"},"choices":[{"delta":{"content":"x"}}]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"choices":[{"delta":{"content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"x","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":["x"]}}]}"#,
            r#"{"choices":[{"delta":"x"}]}"#,
            r#"{}"#,
            r#"  {"choices":[{"delta":{"content":"\u00e9"}}]}"#,
        ] {
            assert_eq!(chunk_summary(data), tree_summary(data), "{data}");
        }
        assert!(
            chunk_summary(r#"{"choices":[{"delta":{"content":" tok"}}]}"#)
                .unwrap()
                .token
        );
        for not_an_object in ["[1]", "5", "\"x\"", "null"] {
            assert_eq!(
                chunk_summary(not_an_object),
                Some(ChunkSummary::default()),
                "{not_an_object}"
            );
        }
        for not_json in ["[DONE]", "{", "", r#"{"choices":[]"#] {
            assert_eq!(chunk_summary(not_json), None, "{not_json}");
        }
    }
}
