//! `readiness`: a model server (`kind: direct`) is set up for what the Duo features it
//! serves ask of it, each check named after what it guards: the message roles of
//! Duo's prompts (a chat template without a system role refuses them), a context window
//! that holds the largest request (prompt plus `max_tokens`; vLLM refuses, it does not
//! truncate), tool calls (agentic Chat and the Duo Agent Platform), an answer in
//! `content` within the smallest output budget (a reasoning model may spend it
//! thinking), `stop` and `max_tokens` honoured, and the served model name.
//!
//! What each feature asks is the AI gateway's own request, recorded
//! ([`crate::instance::requests`]). A model serves the features the scenario maps to
//! it, or, when the scenario maps none, every feature its family may serve.

use serde_json::{Value, json};

use super::planner::{Front, Planner};
use super::vendor::direct_probe;
use super::verdict::{Verdict, error, fail, pass};
use super::{Ctx, Rule};
use crate::adapter::openai::Exchange;
use crate::feature::FEATURES;
use crate::identifier::Provider;
use crate::instance::requests::{self, FeatureRequest, Role};
use crate::instance::served;
use crate::plan::{CheckId, DirectOp, Judge, PlannedCheck, ReadyOp, ReadyRule};
use crate::scenario::{CheckFamily, FeatureSetting, Scenario, Target};
use crate::text::trunc;
use crate::wire::openai::error_message;

/// The `readiness` family.
pub struct Readiness;

/// Every rule, with what it guards.
const RULES: [(ReadyRule, &str); 6] = [
    (
        ReadyRule::Roles,
        "Duo Chat and the prompt features: the chat template takes the roles Duo's prompts send (a system prompt, then user and assistant turns)",
    ),
    (
        ReadyRule::Context,
        "every feature served: the context window holds the largest request (prompt plus max_tokens)",
    ),
    (
        ReadyRule::Tools,
        "agentic Duo Chat and the Duo Agent Platform: tools offered with automatic choice come back as parseable tool calls",
    ),
    (
        ReadyRule::Answer,
        "every feature served: the answer is in `content` (what GitLab shows) within the smallest max_tokens a feature asks for",
    ),
    (
        ReadyRule::Limits,
        "code suggestions: `stop` sequences end the answer and `max_tokens` bounds it",
    ),
    (
        ReadyRule::ServedName,
        "every feature: the server answers under the identifier's model name",
    ),
];

impl Rule for Readiness {
    fn family(&self) -> CheckFamily {
        CheckFamily::Readiness
    }

    fn plan(&self, p: &mut Planner<'_>) {
        if p.front() != Front::Direct {
            return;
        }
        for (i, m) in p.s.models.iter().enumerate() {
            let id = |rule: ReadyRule| CheckId::of(CheckFamily::Readiness, &m.name, rule.name());
            let skip_all = |p: &mut Planner<'_>, why: &str| {
                for (rule, text) in RULES {
                    p.skip(id(rule), text, Judge::Readiness(rule), why);
                }
            };
            if m.identifier.provider == Provider::Bedrock {
                skip_all(
                    p,
                    "Bedrock serves its models with their own templates, windows and tool use: readiness is about servers you run",
                );
                continue;
            }
            let asks = asks(p.s, i);
            let Some(largest) = asks.iter().copied().max_by_key(|r| r.context_tokens()) else {
                skip_all(
                    p,
                    &format!(
                        "no Duo feature of GitLab {} is served by model `{}` (family `{}`)",
                        p.shapes().name(),
                        m.name,
                        m.family
                    ),
                );
                continue;
            };
            let openai = m.identifier.provider == Provider::CustomOpenai;
            let mut sequences: Vec<&'static [Role]> = Vec::new();
            for r in &asks {
                if !sequences.contains(&r.roles) {
                    sequences.push(r.roles);
                }
            }
            let roles: Vec<usize> = sequences
                .iter()
                .map(|s| direct_probe(p, i, DirectOp::Ready(ReadyOp::Roles(s))))
                .collect();
            let models = openai.then(|| direct_probe(p, i, DirectOp::Models));
            p.check(
                id(ReadyRule::Roles),
                RULES[0].1,
                Judge::Readiness(ReadyRule::Roles),
                roles.clone(),
            );
            let context = direct_probe(
                p,
                i,
                DirectOp::Ready(ReadyOp::Context {
                    prompt_tokens: largest.prompt_tokens(),
                    max_tokens: largest.max_tokens,
                }),
            );
            let mut probes = vec![context];
            probes.extend(models);
            p.check(
                id(ReadyRule::Context),
                RULES[1].1,
                Judge::Readiness(ReadyRule::Context),
                probes,
            );
            let tools = direct_probe(p, i, DirectOp::Ready(ReadyOp::Tools));
            p.check(
                id(ReadyRule::Tools),
                RULES[2].1,
                Judge::Readiness(ReadyRule::Tools),
                vec![tools],
            );
            let smallest = asks.iter().map(|r| r.max_tokens).min().unwrap_or(largest.max_tokens);
            let budget = direct_probe(p, i, DirectOp::Ready(ReadyOp::Budget { max_tokens: smallest }));
            p.check(
                id(ReadyRule::Answer),
                RULES[3].1,
                Judge::Readiness(ReadyRule::Answer),
                vec![budget],
            );
            let stop = direct_probe(p, i, DirectOp::Ready(ReadyOp::Stop));
            let length = direct_probe(p, i, DirectOp::Ready(ReadyOp::Length));
            p.check(
                id(ReadyRule::Limits),
                RULES[4].1,
                Judge::Readiness(ReadyRule::Limits),
                vec![stop, length],
            );
            match models {
                Some(k) => p.check(
                    id(ReadyRule::ServedName),
                    RULES[5].1,
                    Judge::Readiness(ReadyRule::ServedName),
                    vec![k, roles[0]],
                ),
                None => p.skip(
                    id(ReadyRule::ServedName),
                    RULES[5].1,
                    Judge::Readiness(ReadyRule::ServedName),
                    "an Azure deployment answers under its deployment name, whatever model it runs",
                ),
            }
            plan_replay(p, i);
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        let Judge::Readiness(rule) = check.judge else {
            return super::misfiled(check);
        };
        let mut xs = Vec::new();
        for &k in &check.probes {
            match &cx.direct[k].result {
                None => {
                    return error(
                        "",
                        format!("not run: {}", cx.not_run.unwrap_or("the run stopped first")),
                    );
                }
                Some(Err(e)) => return error("a reply from the server", format!("no reply ({e})")),
                Some(Ok(x)) => xs.push((cx.plan_direct[k].op, x)),
            }
        }
        let model = cx.scenario.models.get(cx.plan_direct[check.probes[0]].model);
        let name = model.map_or("", |m| m.identifier.model.as_str());
        match rule {
            ReadyRule::Roles => roles(cx, check, &xs),
            ReadyRule::Context => context(cx, check, &xs),
            ReadyRule::Tools => tools(&xs),
            ReadyRule::Answer => answer(&xs),
            ReadyRule::Limits => limits(&xs),
            ReadyRule::ServedName => served_name(name, &xs),
            ReadyRule::Replay => replayed(cx, &xs),
        }
    }
}

/// The features a model serves: those the scenario maps to it (Chat sub-features
/// falling back to it included), or, when the scenario maps none to any model, every
/// feature its family may serve.
fn features_of(s: &Scenario, model: usize) -> Vec<&'static str> {
    let m = &s.models[model];
    let on = |f: &FeatureSetting, want: Option<usize>| match f.target {
        Target::Model(i) | Target::Fallback(i) => want.is_none_or(|w| w == i),
        _ => false,
    };
    if s.features.iter().any(|f| on(f, None)) {
        s.features
            .iter()
            .filter(|f| on(f, Some(model)))
            .map(|f| f.feature.name)
            .collect()
    } else {
        FEATURES
            .iter()
            .filter(|f| served(s.instance.shapes, f, &m.family).is_ok())
            .map(|f| f.name)
            .collect()
    }
}

/// What the model's features ask of its server, as recorded.
fn asks(s: &Scenario, model: usize) -> Vec<&'static FeatureRequest> {
    let shapes = s.instance.shapes;
    features_of(s, model)
        .iter()
        .filter_map(|f| requests::of(shapes, f))
        .collect()
}

/// `readiness.<model>.replay.<feature>`: the gateway's own requests for each feature
/// the model serves, from the scenario's `replay:` transcript.
fn plan_replay(p: &mut Planner<'_>, model: usize) {
    let name = &p.s.models[model].name;
    for feature in features_of(p.s, model) {
        let probes: Vec<usize> = (0..p.s.replay.len())
            .filter(|&k| p.s.replay[k].feature == feature)
            .collect();
        if probes.is_empty() {
            continue;
        }
        let probes = probes
            .into_iter()
            .map(|k| direct_probe(p, model, DirectOp::Ready(ReadyOp::Replay(k))))
            .collect();
        p.check(
            CheckId::of(CheckFamily::Readiness, name, format!("replay.{feature}")),
            &format!("{feature}: the server takes the requests the AI gateway sent for it (roles, sizes and parameters as recorded)"),
            Judge::Readiness(ReadyRule::Replay),
            probes,
        );
    }
}

fn replayed(cx: &Ctx<'_>, xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let describe = |k: usize| {
        let r = &cx.scenario.replay[k];
        format!(
            "[{}], {} characters of prompt, max_tokens {}{}",
            r.roles().join(", "),
            r.prompt_chars(),
            r.body["max_tokens"]
                .as_u64()
                .map_or("unset".to_owned(), |m| m.to_string()),
            if r.stream() { ", streamed" } else { "" }
        )
    };
    let expected = "200 to each request the gateway sent".to_owned();
    for (op, x) in xs {
        let DirectOp::Ready(ReadyOp::Replay(k)) = op else {
            continue;
        };
        if x.status != 200 {
            return fail(
                expected,
                format!("the gateway's request ({}) refused: {}", describe(*k), refusal(x)),
            );
        }
    }
    pass(expected, format!("{} request(s) taken", xs.len()))
}

/// The model's features whose request matches `pick`.
fn features_where(cx: &Ctx<'_>, check: &PlannedCheck, pick: impl Fn(&FeatureRequest) -> bool) -> Vec<&'static str> {
    let model = cx.plan_direct[check.probes[0]].model;
    asks(cx.scenario, model)
        .into_iter()
        .filter(|r| pick(r))
        .map(|r| r.feature)
        .collect()
}

/// The server's refusal, in its own words.
fn refusal(x: &Exchange) -> String {
    match error_message(&x.body) {
        Some(m) => format!("{} {}", x.status, trunc(&m, 300)),
        None => format!("{} {}", x.status, trunc(&x.body, 200)),
    }
}

fn reply(x: &Exchange) -> Option<Value> {
    serde_json::from_str(&x.body).ok()
}

fn roles(cx: &Ctx<'_>, check: &PlannedCheck, xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let seqs: Vec<String> = xs
        .iter()
        .filter_map(|(op, _)| match op {
            DirectOp::Ready(ReadyOp::Roles(r)) => Some(r.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")),
            _ => None,
        })
        .collect();
    let expected = format!("200 to [{}]", seqs.join("] and ["));
    for (op, x) in xs {
        let DirectOp::Ready(ReadyOp::Roles(r)) = op else {
            continue;
        };
        if x.status != 200 {
            let seq: Vec<&str> = r.iter().map(|r| r.name()).collect();
            return fail(
                expected,
                format!(
                    "[{}] refused: {}; features that send it: {}. Give the server a chat template that takes a system message (GitLab's documentation: a custom chat template for vLLM)",
                    seq.join(", "),
                    refusal(x),
                    features_where(cx, check, |f| f.roles == *r).join(", ")
                ),
            );
        }
    }
    // Whether the answer is empty is `answer`'s business: a reasoning model may spend
    // this small budget thinking.
    pass(expected, format!("{} role sequence(s) taken", xs.len()))
}

/// `max_model_len` of the model, from `GET /models` (vLLM lists it).
fn max_model_len(xs: &[(DirectOp, &Exchange)], model: &str) -> Option<u64> {
    let (_, x) = xs.iter().find(|(op, _)| *op == DirectOp::Models)?;
    let v = reply(x)?;
    v["data"].as_array()?.iter().find(|m| m["id"].as_str() == Some(model))?["max_model_len"].as_u64()
}

fn context(cx: &Ctx<'_>, check: &PlannedCheck, xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let Some((
        DirectOp::Ready(ReadyOp::Context {
            prompt_tokens,
            max_tokens,
        }),
        x,
    )) = xs.first().copied()
    else {
        return error("", "the check has no context request");
    };
    let probe = &cx.plan_direct[check.probes[0]];
    let m = &cx.scenario.models[probe.model];
    let total = u64::from(prompt_tokens) + u64::from(max_tokens);
    let window = max_model_len(xs, &m.identifier.model);
    let expected = format!("a {prompt_tokens}-token prompt asking for {max_tokens} tokens ({total} in all) is taken");
    let listed = window
        .map(|w| format!("; /models lists max_model_len {w}"))
        .unwrap_or_default();
    if x.status == 200 {
        return pass(expected, format!("taken: the server started answering{listed}"));
    }
    // Which features fit the window the server states (or lists).
    let stated = window.or_else(|| stated_window(&x.body));
    let advice = match stated {
        Some(w) => {
            let over: Vec<String> = asks(cx.scenario, probe.model)
                .iter()
                .filter(|r| u64::from(r.context_tokens()) > w)
                .map(|r| format!("{} ({})", r.feature, r.context_tokens()))
                .collect();
            format!(
                "; over a {w}-token window: {}. Raise --max-model-len, or map those features to a model with a larger window",
                over.join(", ")
            )
        }
        None => String::new(),
    };
    fail(expected, format!("refused: {}{advice}", refusal(x)))
}

/// The window a vLLM refusal states ("maximum context length is N tokens").
fn stated_window(body: &str) -> Option<u64> {
    let msg = error_message(body)?;
    let rest = msg.split("maximum context length is ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn content(x: &Exchange) -> String {
    reply(x)
        .and_then(|v| {
            v.pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn tools(xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let expected = "200 with choices[0].message.tool_calls: get_weather with JSON arguments".to_owned();
    let Some((_, x)) = xs.first() else {
        return error("", "the check has no request");
    };
    if x.status != 200 {
        return fail(
            expected,
            format!(
                "refused: {}. vLLM needs --enable-auto-tool-choice and a --tool-call-parser for the model",
                refusal(x)
            ),
        );
    }
    let Some(v) = reply(x) else {
        return fail(expected, format!("the body is not JSON: {}", trunc(&x.body, 80)));
    };
    let calls = v.pointer("/choices/0/message/tool_calls").and_then(Value::as_array);
    let Some(call) = calls.and_then(|c| c.first()) else {
        return fail(
            expected,
            format!("no tool call; the answer was text: {}", trunc(&content(x), 120)),
        );
    };
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let args = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match serde_json::from_str::<Value>(args) {
        Ok(a) if name == "get_weather" && a.is_object() => pass(expected, format!("{name}({args})")),
        Ok(_) => fail(
            expected,
            format!("a call of `{name}` with arguments {}", trunc(args, 80)),
        ),
        Err(_) => fail(
            expected,
            format!("the arguments of `{name}` are not JSON: {}", trunc(args, 80)),
        ),
    }
}

fn answer(xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let Some((DirectOp::Ready(ReadyOp::Budget { max_tokens }), x)) = xs.first().copied() else {
        return error("", "the check has no request");
    };
    let expected = format!("200 with the answer in content, max_tokens {max_tokens}");
    if x.status != 200 {
        return fail(expected, format!("refused: {}", refusal(x)));
    }
    let v = reply(x).unwrap_or_default();
    let text = content(x);
    let thought = v
        .pointer("/choices/0/message/reasoning_content")
        .or_else(|| v.pointer("/choices/0/message/reasoning"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let finish = v
        .pointer("/choices/0/finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match (text.trim().is_empty(), thought.is_empty()) {
        (false, _) => pass(expected, format!("{} characters of answer", text.len())),
        (true, false) => fail(
            expected,
            format!(
                "content is empty and {} characters went to reasoning_content (finish_reason {finish}): GitLab shows only content, so users get an empty reply. Serve a non-reasoning model for this feature, or one whose thinking fits the budget",
                thought.len()
            ),
        ),
        (true, true) => fail(expected, format!("content is empty (finish_reason {finish})")),
    }
}

fn limits(xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let expected =
        "the answer ends before the stop sequence `,` and a 5-token max_tokens gives at most 5 tokens".to_owned();
    let mut found = Vec::new();
    for (op, x) in xs {
        if x.status != 200 {
            return fail(expected, format!("refused: {}", refusal(x)));
        }
        let text = content(x);
        match op {
            DirectOp::Ready(ReadyOp::Stop) if text.contains(',') => {
                found.push(format!("the answer runs past the stop sequence: {}", trunc(&text, 60)));
            }
            DirectOp::Ready(ReadyOp::Length) => {
                let used = reply(x)
                    .and_then(|v| v.pointer("/usage/completion_tokens").and_then(Value::as_u64))
                    .unwrap_or(0);
                if used > u64::from(LENGTH_MAX_TOKENS) {
                    found.push(format!("{used} completion tokens for max_tokens {LENGTH_MAX_TOKENS}"));
                }
            }
            _ => {}
        }
    }
    if found.is_empty() {
        pass(expected, "both honoured")
    } else {
        fail(expected, found.join("; "))
    }
}

fn served_name(model: &str, xs: &[(DirectOp, &Exchange)]) -> Verdict {
    let expected = format!("/models lists `{model}` and a reply names it");
    let listed = xs
        .iter()
        .find(|(op, _)| *op == DirectOp::Models)
        .and_then(|(_, x)| reply(x))
        .and_then(|v| v["data"].as_array().cloned())
        .unwrap_or_default();
    let ids: Vec<&str> = listed.iter().filter_map(|m| m["id"].as_str()).collect();
    if !ids.contains(&model) {
        return fail(
            expected,
            format!(
                "/models lists {}: start the server with --served-model-name {model}, or use a listed name in the identifier",
                if ids.is_empty() {
                    "nothing".to_owned()
                } else {
                    ids.join(", ")
                }
            ),
        );
    }
    let named = xs
        .iter()
        .find(|(op, _)| matches!(op, DirectOp::Ready(ReadyOp::Roles(_))))
        .and_then(|(_, x)| reply(x))
        .and_then(|v| v["model"].as_str().map(str::to_owned));
    match named {
        Some(n) if n != model => fail(expected, format!("listed, but a reply names `{n}`")),
        _ => pass(expected, "listed, and replies name it"),
    }
}

/// `max_tokens` of the length probe.
const LENGTH_MAX_TOKENS: u32 = 5;

/// A readiness request: where it goes under the endpoint, its body, and whether a
/// successful reply is read only to its first event.
#[derive(Debug)]
pub struct ReadyRequest {
    /// `chat/completions` or `completions`.
    pub path: &'static str,
    /// The JSON body.
    pub body: Value,
    /// Read a successful reply only to its first event (a stream asking for much).
    pub head: bool,
}

/// The readiness request `op` of scenario `s` for `model`, carrying `correlation_id`
/// (a replayed request carries the gateway's own).
pub fn request(s: &Scenario, op: ReadyOp, model: &str, correlation_id: &str) -> ReadyRequest {
    if let ReadyOp::Replay(k) = op {
        let r = &s.replay[k];
        let mut body = r.body.clone();
        body["model"] = json!(model);
        return ReadyRequest {
            path: r.path(),
            head: r.stream(),
            body,
        };
    }
    ReadyRequest {
        path: "chat/completions",
        body: body(op, model, correlation_id),
        head: matches!(op, ReadyOp::Context { .. }),
    }
}

/// The body of one of gateprobe's own readiness requests.
fn body(op: ReadyOp, model: &str, correlation_id: &str) -> Value {
    let tag = format!("[{correlation_id}]");
    let user = |text: &str| json!({"role": "user", "content": format!("{text} {tag}")});
    let mut b = match op {
        ReadyOp::Roles(roles) => {
            let messages: Vec<Value> = roles
                .iter()
                .map(|r| match r {
                    Role::System => {
                        json!({"role": "system", "content": format!("You are a coding assistant. Answer briefly. {tag}")})
                    }
                    Role::User => json!({"role": "user", "content": "Write a Python function that adds two numbers."}),
                    Role::Assistant => json!({"role": "assistant", "content": "Thought:"}),
                })
                .collect();
            json!({"messages": messages, "max_tokens": 32})
        }
        ReadyOp::Context {
            prompt_tokens,
            max_tokens,
        } => {
            // One token per ` the` with the tokenizers Duo's families use, and
            // CHARS_PER_TOKEN characters each; the question adds about 10. One user
            // message, so that only the window can refuse it.
            let filler = " the".repeat(prompt_tokens.saturating_sub(10) as usize);
            json!({"messages": [user(&format!("{filler}\n\nReply with one word."))],
                   "max_tokens": max_tokens, "stream": true})
        }
        ReadyOp::Tools => json!({
            "messages": [user("What is the weather in Paris? Use the tool.")],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "The current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "auto", "max_tokens": 64}),
        ReadyOp::Budget { max_tokens } => {
            json!({"messages": [user("Complete this Python function: def add(a, b):")], "max_tokens": max_tokens})
        }
        ReadyOp::Stop => json!({
            "messages": [user("List the numbers from 1 to 20, separated by commas, and nothing else.")],
            "stop": [","], "max_tokens": 64}),
        ReadyOp::Length => json!({
            "messages": [user("Count from 1 to 200, separated by spaces.")],
            "max_tokens": LENGTH_MAX_TOKENS}),
        // Sent from the transcript (see `request`).
        ReadyOp::Replay(_) => json!({}),
    };
    b["model"] = json!(model);
    b["temperature"] = json!(0);
    b
}
