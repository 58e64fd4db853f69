//! How a mock vLLM server differs from one set up the way Duo needs: the refusals a
//! real server gives when its chat template, context window or tool parser does not fit
//! the AI gateway's requests (with vLLM's own messages), a reasoning model's split
//! answer, and a server that ignores `stop` and `max_tokens`. Tool calls are answered
//! by every mock whose server has a tool parser, as vLLM with
//! `--enable-auto-tool-choice` does.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::openai::{Kind, json_response, unix_now};
use crate::scenario::behavior::{Personality, REASONING_TOKENS};

pub(super) use super::prompt::MessageIn;

/// One entry of a request's `tools`.
#[derive(serde::Deserialize)]
pub(super) struct ToolSpec {
    #[serde(default)]
    pub function: Option<FunctionSpec>,
}

/// A tool's function.
#[derive(serde::Deserialize)]
pub(super) struct FunctionSpec {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `stop`: one string or several.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum StopSpec {
    One(String),
    Many(Vec<String>),
}

impl StopSpec {
    fn all(&self) -> &[String] {
        match self {
            StopSpec::One(s) => std::slice::from_ref(s),
            StopSpec::Many(v) => v,
        }
    }
}

/// What the mock was asked, as far as the personality reads it.
pub(super) struct Ask<'r> {
    pub kind: Kind,
    /// The prompt's tokens, as the backend counts them.
    pub prompt_tokens: u64,
    pub messages: Option<&'r [MessageIn<'r>]>,
    pub tools: Option<&'r [ToolSpec]>,
    pub tool_choice: Option<&'r Value>,
    pub max_tokens: Option<u64>,
}

/// vLLM's 400 body.
fn bad_request(message: &str) -> Response {
    super::journal::with_reason(
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"message": message, "type": "BadRequestError", "param": null, "code": 400}}),
        ),
        message,
    )
}

/// The refusal a server with this personality gives, if it refuses.
pub(super) fn refuse(p: &Personality, ask: &Ask<'_>) -> Option<Response> {
    if p.strict_roles && ask.kind == Kind::Chat {
        // Mistral's template: user and assistant strictly alternate, user first; any
        // other role breaks the alternation (the system role included).
        let alternates = ask.messages.unwrap_or_default().iter().enumerate().all(|(i, m)| {
            let role = m.role.as_deref().unwrap_or("user");
            matches!(role, "user" | "assistant") && (role == "user") == (i % 2 == 0)
        });
        if !alternates {
            return Some(bad_request(
                "Conversation roles must alternate user/assistant/user/assistant/...",
            ));
        }
    }
    if p.no_tool_parser && wants_auto_tools(ask) {
        return Some(bad_request(
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        ));
    }
    too_long(p.max_model_len, ask)
}

/// Tools given and the choice left to the model (vLLM's default with tools is `auto`).
fn wants_auto_tools(ask: &Ask<'_>) -> bool {
    ask.tools.is_some_and(|t| !t.is_empty()) && ask.tool_choice.is_none_or(|c| c.as_str() == Some("auto"))
}

/// vLLM's refusal of a prompt plus `max_tokens` over the context window.
fn too_long(max_model_len: u32, ask: &Ask<'_>) -> Option<Response> {
    let limit = u64::from(max_model_len);
    let wanted = ask.max_tokens.unwrap_or(0);
    let prompt = ask.prompt_tokens;
    if prompt + wanted <= limit && prompt < limit {
        return None;
    }
    let message = if ask.max_tokens.is_some() {
        format!(
            "This model's maximum context length is {limit} tokens. However, you requested {} tokens ({prompt} in the messages, {wanted} in the completion). Please reduce the length of the messages or completion.",
            prompt + wanted
        )
    } else {
        format!(
            "This model's maximum context length is {limit} tokens. However, your request has {prompt} input tokens. Please reduce the length of the input messages."
        )
    };
    Some(bad_request(&message))
}

/// `text` cut before the first of the request's stop sequences, and whether it was.
pub(super) fn apply_stop(text: &mut String, stop: Option<&StopSpec>) -> bool {
    let cut = stop
        .map(StopSpec::all)
        .unwrap_or_default()
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    match cut {
        Some(i) => {
            text.truncate(i);
            true
        }
        None => false,
    }
}

/// Streamed `tokens` cut as [`apply_stop`] cuts their text: the token that holds the
/// start of the match keeps what comes before it, the later ones go. A stream that
/// stops before its first character keeps one empty token, which carries the finish
/// reason (vLLM's last chunk is then `"content": ""`). Whether they were cut.
pub(super) fn apply_stop_tokens(tokens: &mut Vec<String>, stop: Option<&StopSpec>) -> bool {
    // Most requests carry no stop sequence: no need to join the reply for them.
    let Some(stop) = stop else { return false };
    let mut text = tokens.concat();
    if !apply_stop(&mut text, Some(stop)) {
        return false;
    }
    // `left` is a character boundary of the whole text, and so of the token it ends in.
    let mut left = text.len();
    let mut kept = 0;
    for t in tokens.iter_mut() {
        if left == 0 {
            break;
        }
        t.truncate(left);
        left -= t.len();
        kept += 1;
    }
    tokens.truncate(kept.max(1));
    if kept == 0 {
        tokens.iter_mut().for_each(String::clear);
    }
    true
}

/// What a reply that is not plain text carries.
pub(super) enum Special {
    /// A call of this tool with these arguments.
    ToolCall { name: String, arguments: String },
    /// A reasoning model's thinking, then its answer (`None`: the budget ran out first).
    Reasoning { thinking: String, answer: Option<String> },
}

/// The tool call a server with a tool parser answers with, when the request offers
/// tools and does not forbid them: the named tool, or the first.
pub(super) fn tool_call(ask: &Ask<'_>) -> Option<Special> {
    let tools = ask.tools.filter(|t| !t.is_empty())?;
    let named = match ask.tool_choice {
        Some(Value::String(s)) if s == "none" => return None,
        Some(c) => c.pointer("/function/name").and_then(Value::as_str),
        None => None,
    };
    let f = tools
        .iter()
        .filter_map(|t| t.function.as_ref())
        .find(|f| named.is_none_or(|n| n == f.name))?;
    Some(Special::ToolCall {
        name: f.name.clone(),
        arguments: arguments(f.parameters.as_ref()).to_string(),
    })
}

/// Arguments that satisfy a JSON schema's required properties, with plain values.
fn arguments(schema: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    let Some(schema) = schema else {
        return Value::Object(out);
    };
    for name in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let prop = &schema["properties"][name];
        let value = match (prop["enum"].get(0), prop["type"].as_str()) {
            (Some(first), _) => first.clone(),
            (None, Some("integer" | "number")) => json!(1),
            (None, Some("boolean")) => json!(true),
            (None, Some("array")) => json!([]),
            (None, Some("object")) => json!({}),
            _ => json!("gateprobe"),
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

/// A reasoning model's reply of `n_tokens` answer tokens: [`REASONING_TOKENS`] of
/// thinking first, so a `max_tokens` at or under that leaves the answer empty.
pub(super) fn reasoning(max_tokens: Option<u64>, answer: impl FnOnce(usize) -> String, n_tokens: usize) -> Special {
    let budget = max_tokens.map_or(u64::MAX, |m| m);
    let thinking_tokens = budget.min(u64::from(REASONING_TOKENS)) as usize;
    let thinking = "Let me think about this step by step. ".repeat(thinking_tokens.div_ceil(8));
    let left = budget.saturating_sub(u64::from(REASONING_TOKENS)) as usize;
    Special::Reasoning {
        thinking,
        answer: (left > 0).then(|| answer(n_tokens.min(left))),
    }
}

/// The reply (whole, or as one burst of SSE frames) carrying a [`Special`].
pub(super) fn special_reply(
    special: &Special,
    id: &str,
    model: &str,
    stream: bool,
    prompt_tokens: usize,
    max_tokens: Option<u64>,
) -> Response {
    let created = unix_now();
    let (message, delta_frames, finish, completion) = match special {
        Special::ToolCall { name, arguments } => {
            let call = json!({"id": format!("chatcmpl-tool-{id}"), "type": "function",
                              "function": {"name": name, "arguments": arguments}});
            let mut delta_call = call.clone();
            delta_call["index"] = json!(0);
            (
                json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                vec![json!({"tool_calls": [delta_call]})],
                "tool_calls",
                arguments.len().div_ceil(4) + 4,
            )
        }
        Special::Reasoning { thinking, answer } => {
            let thought_tokens = thinking.len().div_ceil(4);
            let (finish, answer_tokens) = match answer {
                Some(a) => ("stop", a.split(' ').count()),
                None => ("length", 0),
            };
            let mut frames = vec![json!({"reasoning_content": thinking})];
            if let Some(a) = answer {
                frames.push(json!({"content": a}));
            }
            let used = max_tokens.map_or(thought_tokens + answer_tokens, |m| {
                (m as usize).min(thought_tokens + answer_tokens).max(answer_tokens)
            });
            (
                json!({"role": "assistant", "reasoning_content": thinking, "content": answer, "tool_calls": []}),
                frames,
                finish,
                used,
            )
        }
    };
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                       "total_tokens": prompt_tokens + completion});
    if !stream {
        return json_response(
            StatusCode::OK,
            &json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": null,
                                 "finish_reason": finish, "stop_reason": null}],
                    "usage": usage}),
        );
    }
    let chunk = |choices: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": choices})
    };
    let mut out = String::new();
    let mut push = |v: Value| {
        out.push_str("data: ");
        out.push_str(&v.to_string());
        out.push_str("\n\n");
    };
    push(chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
    ));
    let last = delta_frames.len().saturating_sub(1);
    for (i, d) in delta_frames.into_iter().enumerate() {
        let fin = if i == last { json!(finish) } else { Value::Null };
        push(chunk(
            json!([{"index": 0, "delta": d, "logprobs": null, "finish_reason": fin}]),
        ));
    }
    let mut tail = chunk(json!([]));
    tail["usage"] = usage;
    push(tail);
    out.push_str("data: [DONE]\n\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(out))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn ask<'r>(prompt_tokens: u64, messages: Option<&'r [MessageIn<'r>]>) -> Ask<'r> {
        Ask {
            kind: Kind::Chat,
            prompt_tokens,
            messages,
            tools: None,
            tool_choice: None,
            max_tokens: Some(100),
        }
    }

    fn roles(rs: &[&'static str]) -> Vec<MessageIn<'static>> {
        rs.iter()
            .map(|r| MessageIn {
                role: Some(Cow::Borrowed(r)),
                content: None,
            })
            .collect()
    }

    #[test]
    fn a_strict_template_refuses_a_system_role_and_repeated_turns() {
        let p = Personality {
            strict_roles: true,
            ..Personality::default()
        };
        for (rs, refused) in [
            (&["user", "assistant", "user"][..], false),
            (&["user", "assistant"][..], false),
            (&["system", "user"][..], true),
            (&["user", "user"][..], true),
            (&["assistant", "user"][..], true),
        ] {
            let m = roles(rs);
            assert_eq!(refuse(&p, &ask(1, Some(&m))).is_some(), refused, "{rs:?}");
        }
        // The default server takes them all.
        let m = roles(&["system", "user", "assistant"]);
        assert!(refuse(&Personality::default(), &ask(1, Some(&m))).is_none());
    }

    #[test]
    fn the_context_window_holds_prompt_and_max_tokens() {
        let p = Personality {
            max_model_len: 300,
            ..Personality::default()
        };
        let mut a = ask(250, None);
        a.max_tokens = Some(50);
        assert!(refuse(&p, &a).is_none(), "250 + 50 fits 300");
        a.max_tokens = Some(51);
        assert!(refuse(&p, &a).is_some(), "250 + 51 does not");
    }

    #[test]
    fn stop_sequences_cut_the_text_before_the_first_match() {
        let mut t = "1, 2, 3".to_owned();
        assert!(apply_stop(&mut t, Some(&StopSpec::Many(vec![" 3".into(), ",".into()]))));
        assert_eq!(t, "1");
        let mut t = "abc".to_owned();
        assert!(!apply_stop(&mut t, Some(&StopSpec::One("x".into()))));
    }

    #[test]
    fn streamed_tokens_stop_where_the_text_would() {
        let toks = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cut = |v: &[&str], stop: &str| {
            let mut t = toks(v);
            let was = apply_stop_tokens(&mut t, Some(&StopSpec::One(stop.into())));
            (was, t)
        };
        assert_eq!(cut(&["1, ", "2, ", "3"], "2"), (true, toks(&["1, "])));
        assert_eq!(cut(&["1, ", "2, ", "3"], ", 3"), (true, toks(&["1, ", "2"])));
        assert_eq!(cut(&["1, ", "2, ", "3"], " 2, 3"), (true, toks(&["1,"])));
        assert_eq!(cut(&["é, ", "日本"], "本"), (true, toks(&["é, ", "日"])));
        assert_eq!(cut(&["ab", "c"], "a"), (true, toks(&[""])));
        assert_eq!(cut(&["ab", "c"], "x"), (false, toks(&["ab", "c"])));
    }

    #[test]
    fn tool_arguments_fill_the_required_properties() {
        let schema = json!({"type": "object", "required": ["path", "n", "mode"],
            "properties": {"path": {"type": "string"}, "n": {"type": "integer"}, "mode": {"enum": ["a", "b"]}}});
        assert_eq!(
            arguments(Some(&schema)),
            json!({"path": "gateprobe", "n": 1, "mode": "a"})
        );
    }

    #[test]
    fn a_small_budget_leaves_a_reasoning_model_without_an_answer() {
        let answer = |n: usize| "word ".repeat(n);
        match reasoning(Some(64), answer, 16) {
            Special::Reasoning { answer, .. } => assert!(answer.is_none()),
            Special::ToolCall { .. } => unreachable!(),
        }
        match reasoning(Some(1000), answer, 16) {
            Special::Reasoning { answer, .. } => assert!(answer.is_some()),
            Special::ToolCall { .. } => unreachable!(),
        }
    }
}
