//! Validation of a phase's `workload:` block into [`workload`] types, reading its
//! dataset and tokenizer files.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::error::ScenarioError;
use super::raw::{CountSpec, Located, WorkloadSpec};
use super::validate::Ctx;
use super::workload::{Count, Dataset, Record, Workload, preset};
use crate::feature::FEATURES;
use crate::tokens::Counter;
use crate::wire::prompt::Role;

/// Largest dataset file read.
const MAX_DATASET_BYTES: u64 = 256 * 1024 * 1024;
/// Most records kept from a dataset.
const MAX_RECORDS: usize = 1_000_000;
/// Largest token count a distribution may draw (a long-context model's window).
const MAX_COUNT: f64 = 1_048_576.0;

fn count(cx: &Ctx<'_>, spec: &Located<CountSpec>, field: &str) -> Result<Count, ScenarioError> {
    let m = match &spec.value {
        CountSpec::Count(n) if (*n as f64) <= MAX_COUNT => return Ok(Count::Fixed(*n)),
        CountSpec::Count(n) => {
            return Err(cx.err(spec.pos, field, format!("{n} tokens is over the {MAX_COUNT} allowed")));
        }
        CountSpec::Shaped(m) => m,
    };
    let need = |v: Option<f64>, name: &str| {
        v.filter(|x| x.is_finite() && *x >= 0.0 && *x <= MAX_COUNT)
            .ok_or_else(|| {
                cx.err(
                    spec.pos,
                    field,
                    format!("`{}` needs `{name}:`, a number from 0 to {MAX_COUNT}", m.dist),
                )
                .hint("e.g. `{dist: normal, mean: 500, stddev: 100}` or `{dist: lognormal, median: 1000, sigma: 0.6}`")
            })
    };
    let bounds = || -> Result<(u64, u64), ScenarioError> {
        let min = m.min.map_or(Ok(1.0), |_| need(m.min, "min"))? as u64;
        let max = m.max.map_or(Ok(MAX_COUNT), |_| need(m.max, "max"))? as u64;
        if min > max {
            return Err(cx.err(spec.pos, field, format!("min {min} is above max {max}")));
        }
        Ok((min.max(1), max))
    };
    let c = match m.dist.as_str() {
        "fixed" => Count::Fixed(need(m.value, "value")? as u64),
        "uniform" => {
            let (min, max) = (need(m.min, "min")? as u64, need(m.max, "max")? as u64);
            if min > max {
                return Err(cx.err(spec.pos, field, format!("min {min} is above max {max}")));
            }
            Count::Uniform { min, max }
        }
        "normal" => {
            let (min, max) = bounds()?;
            Count::Normal {
                mean: need(m.mean, "mean")?,
                stddev: need(m.stddev, "stddev")?,
                min,
                max,
            }
        }
        "lognormal" => {
            let (min, max) = bounds()?;
            let sigma = m
                .sigma
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 5.0)
                .ok_or_else(|| {
                    cx.err(spec.pos, field, "`lognormal` needs `sigma:` from 0 to 5")
                        .hint("0.5 is a moderate spread")
                })?;
            Count::LogNormal {
                median: need(m.median, "median")?,
                sigma,
                min,
                max,
            }
        }
        other => {
            return Err(cx
                .err(spec.pos, field, format!("unknown distribution `{other}`"))
                .hint("use fixed, uniform, normal or lognormal"));
        }
    };
    Ok(c)
}

/// The workload of phase `field` sending `feature`.
pub(super) fn workload(
    cx: &mut Ctx<'_>,
    spec: &WorkloadSpec,
    feature: &str,
    field: &str,
) -> Result<Workload, ScenarioError> {
    let f = format!("{field}.workload");
    let preset_name = match &spec.preset {
        None => None,
        Some(p) if p.value == "feature" => Some(FEATURES.iter().find(|x| x.name == feature).map_or("", |x| x.name)),
        Some(p) => {
            let names: Vec<&str> = FEATURES.iter().map(|x| x.name).chain(["feature"]).collect();
            Some(cx.one_of(p, &format!("{f}.preset"), "preset", &names)?)
        }
    };
    let base = preset(preset_name.unwrap_or(feature));
    let counter = match (&spec.tokenizer, &spec.chars_per_token) {
        (Some(t), Some(c)) => {
            return Err(cx
                .err(
                    c.pos,
                    format!("{f}.chars_per_token"),
                    "give `tokenizer` or `chars_per_token`, not both",
                )
                .hint(format!("the tokenizer at line {} counts tokens itself", t.pos.line)));
        }
        (Some(t), None) => {
            let name = cx.string(t, &format!("{f}.tokenizer"), None)?;
            let path = cx.path.parent().unwrap_or(Path::new(".")).join(&name);
            Counter::from_file(&path, &name).map_err(|e| {
                cx.err(t.pos, format!("{f}.tokenizer"), e)
                    .hint("name a Hugging Face tokenizer.json, relative to the scenario")
            })?
        }
        (None, Some(c)) if c.value.is_finite() && c.value >= 0.5 && c.value <= 100.0 => Counter::Ratio(c.value),
        (None, Some(c)) => {
            return Err(cx.err(
                c.pos,
                format!("{f}.chars_per_token"),
                "characters per token are from 0.5 to 100",
            ));
        }
        (None, None) => Counter::default(),
    };
    let get = |v: &Option<Located<CountSpec>>, name: &str| v.as_ref().map(|s| count(cx, s, &format!("{f}.{name}")));
    let prompt_tokens = get(&spec.prompt_tokens, "prompt_tokens").transpose()?;
    let output_tokens = get(&spec.output_tokens, "output_tokens").transpose()?;
    let history_turns = get(&spec.history_turns, "history_turns").transpose()?;
    let below_cursor = match &spec.below_cursor {
        Some(b) if !(0.0..=1.0).contains(&b.value) => {
            return Err(cx.err(b.pos, format!("{f}.below_cursor"), "a share from 0 to 1"));
        }
        Some(b) => b.value,
        None => base.below_cursor,
    };
    let dataset = match &spec.dataset {
        None => None,
        Some(d) => {
            let name = cx.string(d, &format!("{f}.dataset"), None)?;
            let path = cx.path.parent().unwrap_or(Path::new(".")).join(&name);
            let records = read_dataset(&path, &counter).map_err(|e| {
                cx.err(d.pos, format!("{f}.dataset"), format!("dataset `{name}`: {e}"))
                    .hint("one JSON object per line: {\"prompt\": ...}, {\"messages\": [...]} or ShareGPT {\"conversations\": [...]}")
            })?;
            Some(Arc::new(Dataset { path: name, records }))
        }
    };
    Ok(Workload {
        preset: preset_name,
        prompt_tokens: prompt_tokens.unwrap_or(base.prompt_tokens),
        // A dataset's own answer lengths, unless the scenario sets them.
        output_tokens: output_tokens.or((dataset.is_none()).then_some(base.output_tokens)),
        history_turns: history_turns.unwrap_or(base.history_turns),
        below_cursor,
        dataset,
        seed: spec.seed.unwrap_or(1),
        counter,
        force_output: spec.force_output.unwrap_or(true),
    })
}

/// Reads a JSONL dataset. Errors name the line.
fn read_dataset(path: &Path, counter: &Counter) -> Result<Vec<Record>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_DATASET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_DATASET_BYTES {
        return Err(format!("it is over {} MiB", MAX_DATASET_BYTES >> 20));
    }
    let text =
        String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        match record(&v, counter) {
            Ok(Some(r)) => out.push(r),
            // A conversation without a user turn has nothing to send.
            Ok(None) => {}
            Err(e) => return Err(format!("line {}: {e}", i + 1)),
        }
        if out.len() >= MAX_RECORDS {
            break;
        }
    }
    if out.is_empty() {
        return Err("it holds no prompt".into());
    }
    Ok(out)
}

fn record(v: &Value, counter: &Counter) -> Result<Option<Record>, String> {
    let output = v
        .get("output_tokens")
        .or_else(|| v.get("max_tokens"))
        .map(|o| o.as_u64().ok_or("`output_tokens` is not a whole number"))
        .transpose()?;
    if let Some(p) = v.get("prompt") {
        let user = p.as_str().ok_or("`prompt` is not a string")?.to_owned();
        return Ok(Some(Record {
            history: Vec::new(),
            user,
            output_tokens: output,
        }));
    }
    // OpenAI `messages` (`role`, `content`) or ShareGPT `conversations` (`from`, `value`).
    let (turns, role_key, text_key) = match (v.get("messages"), v.get("conversations")) {
        (Some(m), _) => (m, "role", "content"),
        (None, Some(c)) => (c, "from", "value"),
        (None, None) => return Err("no `prompt`, `messages` or `conversations`".into()),
    };
    let turns = turns.as_array().ok_or("the turns are not a list")?;
    let mut parsed: Vec<(Role, String)> = Vec::new();
    for t in turns {
        let role = match t.get(role_key).and_then(Value::as_str) {
            Some("human" | "user") => Role::User,
            Some("gpt" | "assistant" | "chatgpt" | "bard" | "bing") => Role::Assistant,
            // System prompts and tool turns are not part of a Duo request's history.
            Some(_) => continue,
            None => return Err(format!("a turn without `{role_key}`")),
        };
        let text = t
            .get(text_key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a turn without a `{text_key}` string"))?;
        parsed.push((role, text.to_owned()));
    }
    // The prompt ends at the last user turn; the answer after it gives the length.
    let Some(last_user) = parsed.iter().rposition(|(r, _)| *r == Role::User) else {
        return Ok(None);
    };
    let answer = parsed.get(last_user + 1).map(|(_, t)| counter.count(t));
    let user = parsed[last_user].1.clone();
    parsed.truncate(last_user);
    Ok(Some(Record {
        history: parsed,
        user,
        output_tokens: output.or(answer),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharegpt_and_messages_end_at_the_last_user_turn() {
        let c = Counter::default();
        let v: Value = serde_json::from_str(
            r#"{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "12345678"},
               {"from": "human", "value": "b"}, {"from": "gpt", "value": "1234"}]}"#,
        )
        .unwrap();
        let r = record(&v, &c).unwrap().unwrap();
        assert_eq!(r.user, "b");
        assert_eq!(
            r.history,
            vec![(Role::User, "a".into()), (Role::Assistant, "12345678".into())]
        );
        assert_eq!(r.output_tokens, Some(1));
        let v: Value =
            serde_json::from_str(r#"{"messages": [{"role": "user", "content": "q"}], "output_tokens": 9}"#).unwrap();
        assert_eq!(record(&v, &c).unwrap().unwrap().output_tokens, Some(9));
        let v: Value = serde_json::from_str(r#"{"conversations": [{"from": "gpt", "value": "x"}]}"#).unwrap();
        assert_eq!(record(&v, &c).unwrap(), None);
        assert!(
            record(&serde_json::json!({"text": 1}), &c)
                .unwrap_err()
                .contains("no `prompt`")
        );
    }
}
