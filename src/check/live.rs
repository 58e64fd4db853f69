//! `live`: every mapped feature end to end, through the gateway to a model endpoint
//! that is not a gateprobe mock (a real model): what the GitLab user gets. Nothing
//! backend-side can be seen there, so the rule is the user's: a non-empty answer, no
//! error (in-band or not), within the instance's AI gateway request timeout
//! (`instance.gateway_timeout`, 60 s by default: a slower answer is an error in Duo
//! Chat). Features on gateprobe's mocks are judged by `feature_mapping` instead.

use super::planner::{Front, Planner};
use super::verdict::{Verdict, describe, error, fail, pass};
use super::{Ctx, Rule};
use crate::instance::served;
use crate::plan::{CheckId, Judge, PlannedCheck};
use crate::scenario::{CheckFamily, Target};

/// The `live` family.
pub struct Live;

impl Rule for Live {
    fn family(&self) -> CheckFamily {
        CheckFamily::Live
    }

    fn plan(&self, p: &mut Planner<'_>) {
        let front = p.front();
        if front == Front::Direct {
            return;
        }
        let rule = format!(
            "the feature answers end to end: a non-empty answer, no error, within the instance's AI gateway timeout ({})",
            humantime::format_duration(p.s.instance.gateway_timeout)
        );
        for fs in &p.s.features {
            let (Target::Model(i) | Target::Fallback(i)) = fs.target else {
                continue;
            };
            let m = &p.s.models[i];
            if m.backend.is_some() || p.fault(i).is_some() {
                continue;
            }
            let f = fs.feature;
            let id = CheckId::bare(CheckFamily::Live, f.name);
            let judge = Judge::Live { model: i };
            let served = match front {
                Front::AiGateway => served(p.shapes(), f, &m.family),
                _ => Ok(()),
            };
            match served {
                Err(why) => p.skip(id, &rule, judge, &why),
                Ok(()) => {
                    let k = p.probe(p.feature_probe(f, i, false));
                    p.check(id, &rule, judge, vec![k]);
                }
            }
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        let Judge::Live { model } = check.judge else {
            return super::misfiled(check);
        };
        let limit = cx.scenario.instance.gateway_timeout;
        let name = &cx.scenario.models[model].name;
        let expected = format!(
            "an answer from model `{name}` within {}",
            humantime::format_duration(limit)
        );
        let Some(o) = check.probes.first().map(|&k| &cx.outcomes[k]) else {
            return error("", "the check has no request to judge");
        };
        let reply = match &o.result {
            None => {
                return error(
                    "",
                    format!("not run: {}", cx.not_run.unwrap_or("the run stopped first")),
                );
            }
            // A timeout is what the user meets: an error after the wait.
            Some(Err(e)) if e.kind == "timeout" => {
                return fail(expected, format!("no answer: {e}"));
            }
            Some(Err(e)) => return error(expected, format!("no reply ({e})")),
            Some(Ok(r)) => r,
        };
        let took = format!("{:.1} s", reply.elapsed.as_secs_f64());
        if reply.elapsed > limit {
            return fail(
                expected,
                format!(
                    "answered after {took}: the instance gives up at {} and shows an error; raise its AI gateway timeout, or serve a faster model",
                    humantime::format_duration(limit)
                ),
            );
        }
        if !(200..300).contains(&reply.status) || reply.error.is_some() || reply.aborted.is_some() {
            return fail(expected, describe(reply));
        }
        if reply.content.trim().is_empty() {
            return fail(expected, format!("an empty answer after {took}"));
        }
        pass(
            expected,
            format!("{} characters in {took}", reply.content.chars().count()),
        )
    }
}
