//! Validation of the `load:` block into [`load`] types.

use std::time::Duration;

use super::error::{ScenarioError, did_you_mean};
use super::load::{ArrivalKind, LoadMode, LoadPhase, RateProfile, Threshold, parse_threshold};
use super::raw::{LoadPhaseSpec, Located, OpenSpec};
use super::validate::Ctx;
use super::{FeatureSetting, Target};
use crate::feature::{self, Endpoint, FEATURES};

/// Default in-flight cap of an open-loop phase.
const DEFAULT_MAX_IN_FLIGHT: usize = 256;

fn duration(cx: &Ctx<'_>, v: &Located<String>, field: &str) -> Result<Duration, ScenarioError> {
    humantime::parse_duration(v.value.trim()).map_err(|e| {
        cx.err(v.pos, field, format!("invalid duration `{}`: {e}", v.value))
            .hint("write a duration such as `20s` or `1m`")
    })
}

fn threshold(cx: &Ctx<'_>, v: &Located<String>, field: &str) -> Result<Threshold, ScenarioError> {
    parse_threshold(&v.value).map_err(|e| {
        cx.err(v.pos, field, format!("bad threshold `{}`", v.value))
            .hint(format!(
                "{e}; e.g. `ttft.p99 < 500ms`, `error_rate < 0.5%`, `rps >= 40`"
            ))
    })
}

fn arrivals(
    cx: &Ctx<'_>,
    v: Option<&Located<String>>,
    burstiness: Option<&Located<f64>>,
    seed: u64,
    field: &str,
) -> Result<ArrivalKind, ScenarioError> {
    let Some(v) = v else { return Ok(ArrivalKind::Uniform) };
    Ok(
        match cx.one_of(v, field, "arrival process", &["uniform", "poisson", "gamma"])? {
            "poisson" => ArrivalKind::Poisson { seed },
            "gamma" => {
                let b = burstiness.ok_or_else(|| {
                    cx.err(v.pos, field, "`gamma` needs `burstiness:`")
                        .hint("1 is Poisson, below 1 is burstier, e.g. `burstiness: 0.5`")
                })?;
                if !(b.value.is_finite() && b.value > 0.0) {
                    return Err(cx.err(b.pos, field, "burstiness must be above 0"));
                }
                ArrivalKind::Gamma {
                    burstiness: b.value,
                    seed,
                }
            }
            _ => ArrivalKind::Uniform,
        },
    )
}

fn open(cx: &Ctx<'_>, o: &OpenSpec, pos: super::raw::Pos, field: &str) -> Result<LoadMode, ScenarioError> {
    let given = [o.rate.is_some(), o.ramp.is_some(), o.steps.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given != 1 {
        return Err(cx
            .err(
                pos,
                format!("{field}.open"),
                "`open` needs exactly one of rate, ramp, steps",
            )
            .hint("e.g. `open: {rate: 50}`, `open: {ramp: {from: 1, to: 50, over: 30s}}`"));
    }
    let profile = if let Some(r) = &o.rate {
        if !(r.value.is_finite() && r.value > 0.0) {
            return Err(cx.err(r.pos, format!("{field}.open.rate"), "the rate must be above 0"));
        }
        RateProfile::Constant(r.value)
    } else if let Some(r) = &o.ramp {
        let over = duration(cx, &r.over, &format!("{field}.open.ramp.over"))?;
        if r.from < 0.0 || r.to < 0.0 || (r.from == 0.0 && r.to == 0.0) {
            return Err(cx.err(
                r.over.pos,
                format!("{field}.open.ramp"),
                "ramp rates are >= 0 and not both 0",
            ));
        }
        RateProfile::Ramp {
            from: r.from,
            to: r.to,
            over,
        }
    } else {
        let mut steps = Vec::new();
        for (i, st) in o.steps.iter().flatten().enumerate() {
            if st.rate < 0.0 {
                return Err(cx.err(
                    st.duration.pos,
                    format!("{field}.open.steps[{i}].rate"),
                    "a step rate is >= 0",
                ));
            }
            steps.push((
                st.rate,
                duration(cx, &st.duration, &format!("{field}.open.steps[{i}].for"))?,
            ));
        }
        if steps.is_empty() {
            return Err(cx.err(pos, format!("{field}.open.steps"), "`steps` needs at least one step"));
        }
        RateProfile::Steps(steps)
    };
    let arrivals = arrivals(
        cx,
        o.arrivals.as_ref(),
        o.burstiness.as_ref(),
        o.seed.unwrap_or(1),
        &format!("{field}.open.arrivals"),
    )?;
    Ok(LoadMode::Open { profile, arrivals })
}

pub(super) fn phases(
    cx: &mut Ctx<'_>,
    specs: &[LoadPhaseSpec],
    (features, models): (&[FeatureSetting], &[super::ModelConfig]),
    (kind, default_timeout): (super::GatewayKind, Duration),
) -> Result<Vec<LoadPhase>, ScenarioError> {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    let mut out: Vec<LoadPhase> = Vec::new();
    for (i, p) in specs.iter().enumerate() {
        let field = format!("load[{i}]");
        if out.iter().any(|o| o.name == p.name.value) || p.name.value.is_empty() {
            return Err(cx.err(
                p.name.pos,
                format!("{field}.name"),
                format!("phase name `{}` is empty or used twice", p.name.value),
            ));
        }
        let fname = cx.one_of(&p.feature, &format!("{field}.feature"), "feature", &names)?;
        let feat = feature::by_name(fname).unwrap_or(&FEATURES[0]);
        let direct = kind == super::GatewayKind::Direct;
        let mapped = features.iter().find(|f| f.feature.name == fname).map(|f| f.target);
        let model = match (mapped, &p.model) {
            (_, Some(m)) if !direct => {
                return Err(cx
                    .err(
                        m.pos,
                        format!("{field}.model"),
                        "through a gateway the feature's mapping picks the model",
                    )
                    .hint("map the feature under `features:`; `model:` names an endpoint for `kind: direct`"));
            }
            (_, Some(m)) => {
                let names: Vec<&str> = models.iter().map(|x| x.name.as_str()).collect();
                let name = cx.one_of(m, &format!("{field}.model"), "self-hosted model", &names)?;
                models.iter().position(|x| x.name == name).unwrap_or(0)
            }
            (Some(Target::Model(m) | Target::Fallback(m)), None) => m,
            (None, None) if direct && models.len() == 1 => 0,
            (None, None) if direct => {
                return Err(cx
                    .err(
                        p.feature.pos,
                        format!("{field}.feature"),
                        format!("feature `{fname}` is not mapped to a model"),
                    )
                    .hint("name the endpoint's model with `model:`"));
            }
            (Some(t @ (Target::Disabled | Target::Vendored)), None) => {
                let what = if t == Target::Disabled {
                    "disabled"
                } else {
                    "vendored (GitLab serves it with its own models)"
                };
                return Err(cx
                    .err(
                        p.feature.pos,
                        format!("{field}.feature"),
                        format!("feature `{fname}` is {what}"),
                    )
                    .hint("load a feature that is mapped to a model"));
            }
            (None, None) => {
                let mapped: Vec<&str> = features
                    .iter()
                    .filter(|f| !matches!(f.target, Target::Disabled | Target::Vendored))
                    .map(|f| f.feature.name)
                    .collect();
                let err = cx.err(
                    p.feature.pos,
                    format!("{field}.feature"),
                    format!("feature `{fname}` is not mapped to a model"),
                );
                return Err(match did_you_mean(fname, mapped.iter().copied()) {
                    Some(h) => err.hint(h),
                    None => err.hint(format!("map it under `features:`; mapped now: {}", mapped.join(", "))),
                });
            }
        };
        let mode = match (&p.open, &p.closed, &p.sweep) {
            (Some(o), None, None) => open(cx, o, p.name.pos, &field)?,
            (None, Some(c), None) => {
                if c.clients.value == 0 {
                    return Err(cx.err(c.clients.pos, format!("{field}.closed.clients"), "at least one client"));
                }
                let think = c
                    .think
                    .as_ref()
                    .map(|t| duration(cx, t, &format!("{field}.closed.think")))
                    .transpose()?
                    .unwrap_or_default();
                LoadMode::Closed {
                    clients: c.clients.value,
                    think,
                }
            }
            (None, None, Some(s)) => {
                let rates = s.rates.value.clone();
                if rates.is_empty()
                    || rates.iter().any(|r| !(r.is_finite() && *r > 0.0))
                    || rates.windows(2).any(|w| w[1] <= w[0])
                {
                    return Err(cx
                        .err(
                            s.rates.pos,
                            format!("{field}.sweep.rates"),
                            "sweep rates are positive and rising",
                        )
                        .hint("e.g. `rates: [5, 10, 20, 40]`"));
                }
                let step = duration(cx, &s.step, &format!("{field}.sweep.step"))?;
                let slo = threshold(cx, &s.slo, &format!("{field}.sweep.slo"))?;
                if !slo.bounds_the_bad_side() {
                    let (name, fix) = match slo.metric {
                        crate::scenario::load::Metric::Histogram { .. } | crate::scenario::load::Metric::ErrorRate => {
                            ("a ceiling", "`<` or `<=`, e.g. `ttft.p99 < 400ms`")
                        }
                        _ => ("a floor", "`>=` or `>`, e.g. `rps >= 40`"),
                    };
                    return Err(cx
                        .err(
                            s.slo.pos,
                            format!("{field}.sweep.slo"),
                            format!("the SLO `{}` points the wrong way: the sweep would call a step good only once it is bad", s.slo.value),
                        )
                        .hint(format!("an SLO on this metric is {name}: write {fix}")));
                }
                let arrivals = arrivals(cx, s.arrivals.as_ref(), None, 1, &format!("{field}.sweep.arrivals"))?;
                LoadMode::Sweep {
                    rates,
                    step,
                    slo,
                    arrivals,
                }
            }
            _ => {
                return Err(cx
                    .err(
                        p.name.pos,
                        &field,
                        "a phase needs exactly one of `open`, `closed`, `sweep`",
                    )
                    .hint("e.g. `open: {rate: 20}` with `duration: 20s`, or `closed: {clients: 8}`"));
            }
        };
        let duration_v = p
            .duration
            .as_ref()
            .map(|d| duration(cx, d, &format!("{field}.duration")))
            .transpose()?;
        let requests = p.requests.as_ref().map(|r| r.value);
        let bounded_by_profile = matches!(
            &mode,
            LoadMode::Open {
                profile: RateProfile::Ramp { .. } | RateProfile::Steps(_),
                ..
            } | LoadMode::Sweep { .. }
        );
        if duration_v.is_none() && requests.is_none() && !bounded_by_profile {
            return Err(cx
                .err(
                    p.name.pos,
                    &field,
                    "a phase must end by itself: give `duration:` or `requests:`",
                )
                .hint("e.g. `duration: 20s`"));
        }
        let max_in_flight = p
            .max_in_flight
            .as_ref()
            .map_or(DEFAULT_MAX_IN_FLIGHT, |m| m.value.max(1));
        let warmup = p
            .warmup
            .as_ref()
            .map(|w| duration(cx, w, &format!("{field}.warmup")))
            .transpose()?
            .unwrap_or_default();
        let timeout = p
            .timeout
            .as_ref()
            .map(|t| cx.timeout(t, &format!("{field}.timeout")))
            .transpose()?
            .unwrap_or(default_timeout);
        let thresholds = p
            .thresholds
            .iter()
            .enumerate()
            .map(|(j, t)| threshold(cx, t, &format!("{field}.thresholds[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let stream = p.stream.unwrap_or(!matches!(feat.endpoint, Endpoint::Prompt));
        let workload = p
            .workload
            .as_ref()
            .map(|w| super::validate_workload::workload(cx, w, fname, &field))
            .transpose()?
            .map(std::sync::Arc::new);
        let compare_direct = match &p.compare_direct {
            Some(c) if c.value && direct => {
                return Err(cx
                    .err(
                        c.pos,
                        format!("{field}.compare_direct"),
                        "a `kind: direct` phase is already direct",
                    )
                    .hint("compare_direct pairs a gateway's requests with direct ones"));
            }
            Some(c) => c.value,
            None => false,
        };
        out.push(LoadPhase {
            workload,
            compare_direct,
            name: p.name.value.clone(),
            feature: feat,
            model,
            stream: stream || (!direct && feat.endpoint == Endpoint::ChatAgent),
            mode,
            duration: duration_v,
            requests,
            warmup,
            max_in_flight,
            timeout,
            thresholds,
        });
    }
    Ok(out)
}
