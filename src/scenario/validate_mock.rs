//! Validation of a backend's `timing:` and `faults:` blocks into [`behavior`] types.

use std::time::Duration;

use super::behavior::{Dist, FaultAction, FaultRule, Match, PERSONALITIES, Personality, Timing, TokenCount};
use super::error::ScenarioError;
use super::raw::{BackendSpec, DistSpec, FaultSpec, Located, Pos, SelfHostedModelSpec, TimingSpec, TokensSpec};
use super::validate::Ctx;
use super::{AwsConfig, BackendConfig, BackendProvider};
use crate::identifier::Identifier;
use crate::wire::bedrock::base_model as bedrock_base_model;

/// The longest duration a timing model takes: beyond it, deadlines computed from it
/// (times tokens, times a slowdown) could overflow, and no test waits that long.
const MAX_TIMING: Duration = Duration::from_secs(3600);
/// The largest concurrency slowdown (per extra request in flight).
const MAX_SLOWDOWN: f64 = 100.0;

fn duration(cx: &Ctx<'_>, pos: Pos, field: &str, text: &str) -> Result<Duration, ScenarioError> {
    let d = humantime::parse_duration(text.trim())
        .or_else(|_| parse_fractional_ms(text))
        .map_err(|e| {
            cx.err(pos, field, format!("invalid duration `{text}`: {e}"))
                .hint("write a duration such as `20ms`, `0.05ms`, `1.5s`")
        })?;
    if d > MAX_TIMING {
        return Err(cx
            .err(
                pos,
                field,
                format!("`{text}` is longer than the 1 h a timing model allows"),
            )
            .hint("a mock's delays are at most `1h`"));
    }
    Ok(d)
}

/// humantime has no fractions; `0.05ms` and `1.5s` are common in timing models.
fn parse_fractional_ms(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t, ""), |i| (&t[..i], &t[i..]));
    let v: f64 = num.trim().parse().map_err(|_| "not a number".to_owned())?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    if !(v.is_finite() && v >= 0.0) {
        return Err("must be a non-negative number".into());
    }
    Duration::try_from_secs_f64(v * scale).map_err(|_| "is too large".to_owned())
}

fn dist(cx: &Ctx<'_>, spec: &Located<DistSpec>, field: &str) -> Result<Dist, ScenarioError> {
    let pos = spec.pos;
    let need = |v: &Option<String>, name: &str| -> Result<Duration, ScenarioError> {
        match v {
            Some(t) => duration(cx, pos, field, t),
            None => Err(cx.err(pos, field, format!("this distribution needs `{name}`"))),
        }
    };
    match &spec.value {
        DistSpec::Fixed(t) => Ok(Dist::Fixed(duration(cx, pos, field, t)?)),
        DistSpec::Shaped(m) => match m.dist.as_str() {
            "fixed" => Ok(Dist::Fixed(need(&m.value, "value")?)),
            "uniform" => {
                let (min, max) = (need(&m.min, "min")?, need(&m.max, "max")?);
                if min > max {
                    return Err(cx.err(pos, field, "uniform `min` is above `max`"));
                }
                Ok(Dist::Uniform { min, max })
            }
            "normal" => Ok(Dist::Normal {
                mean: need(&m.mean, "mean")?,
                stddev: need(&m.stddev, "stddev")?,
            }),
            "lognormal" => {
                let sigma = m
                    .sigma
                    .ok_or_else(|| cx.err(pos, field, "this distribution needs `sigma`"))?;
                if !(sigma.is_finite() && sigma >= 0.0) {
                    return Err(cx.err(pos, field, "`sigma` must be a non-negative number"));
                }
                Ok(Dist::LogNormal {
                    median: need(&m.median, "median")?,
                    sigma,
                })
            }
            other => Err(cx
                .err(pos, field, format!("unknown distribution `{other}`"))
                .hint("use `fixed`, `uniform` (min, max), `normal` (mean, stddev) or `lognormal` (median, sigma)")),
        },
    }
}

pub(super) fn timing(cx: &Ctx<'_>, field: &str, spec: Option<&TimingSpec>) -> Result<Timing, ScenarioError> {
    let mut t = Timing::default();
    let Some(s) = spec else { return Ok(t) };
    let f = format!("{field}.timing");
    if let Some(d) = &s.ttft {
        t.ttft = dist(cx, d, &format!("{f}.ttft"))?;
    }
    if let Some(d) = &s.itl {
        t.itl = dist(cx, d, &format!("{f}.itl"))?;
    }
    if let Some(tok) = &s.tokens {
        t.tokens = match &tok.value {
            TokensSpec::Count(n) => TokenCount::Fixed(*n),
            TokensSpec::Word(w) if w == "max_tokens" => TokenCount::FromMaxTokens { default: 16 },
            TokensSpec::Word(w) => {
                return Err(cx
                    .err(tok.pos, format!("{f}.tokens"), format!("`{w}` is not a token count"))
                    .hint("write a number, or `max_tokens` to follow the request"));
            }
        };
    }
    if let Some(p) = &s.prefill_per_token {
        t.prefill_per_token = duration(cx, p.pos, &format!("{f}.prefill_per_token"), &p.value)?;
    }
    if let Some(r) = &s.prefill_rate {
        if s.prefill_per_token.is_some() {
            return Err(cx
                .err(
                    r.pos,
                    format!("{f}.prefill_rate"),
                    "give `prefill_rate` or `prefill_per_token`, not both",
                )
                .hint("a rate of 20000 tokens/s is 0.05ms per token"));
        }
        if !(r.value.is_finite() && r.value >= 1.0) {
            return Err(cx.err(
                r.pos,
                format!("{f}.prefill_rate"),
                "a rate of at least 1 token per second",
            ));
        }
        t.prefill_per_token = Duration::from_secs_f64(1.0 / r.value);
    }
    t.counter = match (&s.tokenizer, &s.chars_per_token) {
        (Some(_), Some(c)) => {
            return Err(cx.err(
                c.pos,
                format!("{f}.chars_per_token"),
                "give `tokenizer` or `chars_per_token`, not both",
            ));
        }
        (Some(tk), None) => {
            let path = cx.path.parent().unwrap_or(std::path::Path::new(".")).join(&tk.value);
            crate::tokens::Counter::from_file(&path, &tk.value).map_err(|e| {
                cx.err(tk.pos, format!("{f}.tokenizer"), e)
                    .hint("name a Hugging Face tokenizer.json, relative to the scenario")
            })?
        }
        (None, Some(c)) if c.value.is_finite() && (0.5..=100.0).contains(&c.value) => {
            crate::tokens::Counter::Ratio(c.value)
        }
        (None, Some(c)) => {
            return Err(cx.err(
                c.pos,
                format!("{f}.chars_per_token"),
                "characters per token are from 0.5 to 100",
            ));
        }
        (None, None) => crate::tokens::Counter::default(),
    };
    if let Some(m) = &s.max_concurrency {
        if m.value == 0 {
            return Err(cx.err(
                m.pos,
                format!("{f}.max_concurrency"),
                "max_concurrency must be at least 1",
            ));
        }
        t.max_concurrency = Some(m.value);
    }
    if let Some(sl) = &s.slowdown {
        if !(sl.value.is_finite() && (0.0..=MAX_SLOWDOWN).contains(&sl.value)) {
            return Err(cx.err(
                sl.pos,
                format!("{f}.slowdown"),
                format!("slowdown must be a fraction from 0 to {MAX_SLOWDOWN}"),
            ));
        }
        t.slowdown = sl.value;
    }
    t.seed = s.seed.unwrap_or(0);
    Ok(t)
}

pub(super) fn faults(cx: &Ctx<'_>, field: &str, specs: &[FaultSpec]) -> Result<Vec<FaultRule>, ScenarioError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| fault(cx, &format!("{field}.faults[{i}]"), s))
        .collect()
}

fn fault(cx: &Ctx<'_>, field: &str, s: &FaultSpec) -> Result<FaultRule, ScenarioError> {
    let when = match &s.when {
        None => Match::All,
        Some(w) => {
            let m = &w.value;
            let set = [
                m.first.is_some(),
                m.every.is_some(),
                m.percent.is_some(),
                m.model.is_some(),
            ];
            if set.iter().filter(|b| **b).count() != 1 {
                return Err(cx
                    .err(
                        w.pos,
                        format!("{field}.when"),
                        "`when` needs exactly one of first, every, percent, model",
                    )
                    .hint("e.g. `when: {every: 5}`; omit `when` to match every request"));
            }
            match (m.first, m.every, m.percent, &m.model) {
                (Some(n), ..) => Match::First(n),
                (_, Some(0), ..) => {
                    return Err(cx.err(w.pos, format!("{field}.when.every"), "`every` must be at least 1"));
                }
                (_, Some(n), ..) => Match::Every(n),
                (_, _, Some(p), _) if !(0.0..=100.0).contains(&p) => {
                    return Err(cx.err(w.pos, format!("{field}.when.percent"), "`percent` is between 0 and 100"));
                }
                (_, _, Some(p), _) => Match::Percent(p),
                (_, _, _, Some(model)) => Match::Model(model.clone()),
                _ => Match::All,
            }
        }
    };
    let name = cx.one_of(&s.action, &format!("{field}.do"), "fault action", &FaultAction::NAMES)?;
    let dur = |what: &str| -> Result<Duration, ScenarioError> {
        match &s.duration {
            Some(d) => duration(cx, d.pos, &format!("{field}.for"), &d.value),
            None => Err(cx
                .err(
                    s.action.pos,
                    format!("{field}.for"),
                    format!("`{what}` needs `for:` (how long)"),
                )
                .hint("e.g. `for: 1s`")),
        }
    };
    let action = match name {
        "error" => {
            let Some(st) = &s.status else {
                return Err(cx
                    .err(s.action.pos, format!("{field}.status"), "`error` needs `status:`")
                    .hint("e.g. `status: 429` (401, 403, 404, 429, 500, 503 get the provider's real error body)"));
            };
            if !(400..=599).contains(&st.value) {
                return Err(cx.err(st.pos, format!("{field}.status"), "an error status is 400 to 599"));
            }
            let retry_after = s
                .retry_after
                .as_ref()
                .map(|r| duration(cx, r.pos, &format!("{field}.retry_after"), &r.value))
                .transpose()?;
            FaultAction::Error {
                status: st.value,
                retry_after,
            }
        }
        "slow_first_byte" => FaultAction::SlowFirstByte(dur("slow_first_byte")?),
        "stall" => FaultAction::Stall {
            after_tokens: s.after_tokens.unwrap_or(1),
            duration: dur("stall")?,
        },
        "cut" => FaultAction::Cut {
            after_tokens: s.after_tokens.unwrap_or(1),
        },
        "malformed_json" => FaultAction::MalformedJson,
        "malformed_sse" => FaultAction::MalformedSse,
        "corrupt_crc" => FaultAction::CorruptCrc,
        "empty_200" => FaultAction::Empty200,
        _ => FaultAction::NonSse,
    };
    Ok(FaultRule {
        when,
        action,
        seed: s.seed.unwrap_or(0),
    })
}

/// A backend's `personality:` and `max_model_len:` (OpenAI backends: they imitate how a
/// vLLM server is started).
pub(super) fn personality(
    cx: &Ctx<'_>,
    field: &str,
    provider: BackendProvider,
    b: &BackendSpec,
) -> Result<Personality, ScenarioError> {
    let mut p = Personality::default();
    let first = b
        .personality
        .first()
        .map(|l| l.pos)
        .or(b.max_model_len.as_ref().map(|l| l.pos));
    if provider != BackendProvider::Openai {
        if let Some(pos) = first {
            return Err(cx
                .err(pos, field, "`personality` and `max_model_len` imitate a vLLM server")
                .hint("use them on a backend with `provider: openai`"));
        }
        return Ok(p);
    }
    for (i, name) in b.personality.iter().enumerate() {
        let trait_name = cx.one_of(
            name,
            &format!("{field}.personality[{i}]"),
            "personality",
            &PERSONALITIES,
        )?;
        p.set(trait_name);
    }
    if let Some(len) = &b.max_model_len {
        if len.value < 256 {
            return Err(cx
                .err(
                    len.pos,
                    format!("{field}.max_model_len"),
                    "a context window under 256 tokens holds no Duo prompt",
                )
                .hint("give the server's --max-model-len, e.g. `max_model_len: 8192`"));
        }
        p.max_model_len = len.value;
    }
    Ok(p)
}

/// Bedrock credentials and region (required for `provider: bedrock`, refused elsewhere).
pub(super) fn aws(
    cx: &mut Ctx<'_>,
    field: &str,
    provider: BackendProvider,
    b: &BackendSpec,
) -> Result<Option<AwsConfig>, ScenarioError> {
    let given = [&b.access_key_id, &b.secret_access_key, &b.region, &b.session_token];
    if provider != BackendProvider::Bedrock {
        if let Some(v) = given.iter().find_map(|v| v.as_ref()) {
            return Err(cx
                .err(
                    v.pos,
                    field,
                    "access_key_id, secret_access_key, session_token and region belong to `bedrock` backends",
                )
                .hint("remove them, or set `provider: bedrock`"));
        }
        return Ok(None);
    }
    let need = |cx: &mut Ctx<'_>,
                v: &Option<Located<String>>,
                name: &str,
                secret: bool|
     -> Result<String, ScenarioError> {
        match v {
            Some(v) => {
                let label = format!("{field}.{name}");
                cx.string(v, &label, secret.then_some(label.as_str()))
            }
            None => Err(cx
                .err(b.provider.pos, format!("{field}.{name}"), format!("a bedrock backend needs `{name}`"))
                .hint("e.g. `access_key_id: ${env:AWS_ACCESS_KEY_ID:-AKIDGATEPROBE}` and `secret_access_key: ${env:AWS_SECRET_ACCESS_KEY:-...}`")),
        }
    };
    let access_key_id = need(cx, &b.access_key_id, "access_key_id", false)?;
    let secret_access_key = need(cx, &b.secret_access_key, "secret_access_key", true)?;
    let region = match &b.region {
        Some(r) => cx.string(r, &format!("{field}.region"), None)?,
        None => "us-east-1".to_owned(),
    };
    let session_token = match &b.session_token {
        Some(t) => {
            let label = format!("{field}.session_token");
            let token = cx.string(t, &label, Some(&label))?;
            if token.is_empty() {
                return Err(cx
                    .err(t.pos, label, "`session_token` is empty")
                    .hint("leave it out for long-term credentials, or give the STS session token, e.g. `${env:AWS_SESSION_TOKEN}`"));
            }
            Some(token)
        }
        None => None,
    };
    Ok(Some(AwsConfig {
        access_key_id,
        secret_access_key,
        region,
        session_token,
    }))
}

/// The Bedrock backend serving a `bedrock/` model: the only one there is, and it must
/// enable the model (by its own id or its foundation model's).
pub(super) fn bedrock_backend(
    cx: &Ctx<'_>,
    field: &str,
    m: &SelfHostedModelSpec,
    id: &Identifier,
    backends: &[BackendConfig],
) -> Result<usize, ScenarioError> {
    let bedrock: Vec<usize> = backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.provider == BackendProvider::Bedrock)
        .map(|(i, _)| i)
        .collect();
    let [b] = bedrock[..] else {
        let msg = if bedrock.is_empty() {
            "`bedrock/` models need a `bedrock` backend (the gateway's AWS_BEDROCK_RUNTIME_ENDPOINT)"
        } else {
            "a gateway has one Bedrock runtime endpoint: declare exactly one `bedrock` backend"
        };
        return Err(cx
            .err(m.identifier.pos, format!("{field}.identifier"), msg)
            .hint("add `provider: bedrock` with its models, keys and region under `backends:`"));
    };
    let base = bedrock_base_model(&id.model);
    if !backends[b].models.iter().any(|x| x == &id.model || x == base) {
        return Err(cx
            .err(
                m.identifier.pos,
                format!("{field}.identifier"),
                format!("backend `{}` does not enable `{}`", backends[b].name, id.model),
            )
            .hint(format!("it enables: {}", backends[b].models.join(", "))));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::parse_fractional_ms;
    use std::time::Duration;

    #[test]
    fn fractional_durations() {
        assert_eq!(parse_fractional_ms("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_fractional_ms("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_fractional_ms("-1ms").is_err());
        assert!(parse_fractional_ms("3 parsecs").is_err());
        assert!(parse_fractional_ms("1e400ms").is_err());
        assert_eq!(
            parse_fractional_ms("99999999999999999999999m"),
            Err("is too large".to_owned())
        );
    }

    #[test]
    fn absurd_timing_models_are_refused_not_run() {
        let with = |timing: &str| {
            let src = format!("backends:\n  v:\n    provider: openai\n    models: [m]\n    timing: {timing}\n");
            crate::scenario::load_str(std::path::Path::new("t.yaml"), &src, &|_| None).map(|_| ())
        };
        assert!(with("{ttft: 2s, slowdown: 0.5}").is_ok());
        let e = with("{ttft: 500000000000y}").expect_err("refused").to_string();
        assert!(e.contains("longer than the 1 h") && e.contains("t.yaml:5:"), "{e}");
        assert!(with("{itl: {dist: uniform, min: 1ms, max: 2h}}").is_err());
        assert!(with("{slowdown: 1e30}").is_err());
    }
}
