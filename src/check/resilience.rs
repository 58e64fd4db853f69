//! `resilience`: a backend that fails on purpose (a *fault model*: its backend scripts
//! a fault for it) fails the client the way the gateway profile predicts, on every
//! surface, after the gateway called it. A profile row may name a weakness of the
//! gateway (a cut stream passed off as a complete answer): a warning there, a failure
//! for the reference gateway, which is held to what a real one should do.

use super::planner::Planner;
use super::verdict::{Verdict, describe, fail, pass, seen, skipped, warning};
use super::{Ctx, Rule, strict};
use crate::plan::{CheckId, Judge, PlannedCheck};
use crate::scenario::CheckFamily;
use crate::scenario::profile::fault_key;

/// The `resilience` family.
pub struct Resilience;

impl Rule for Resilience {
    fn family(&self) -> CheckFamily {
        CheckFamily::Resilience
    }

    fn plan(&self, p: &mut Planner<'_>) {
        for (i, m) in p.s.models.iter().enumerate() {
            let Some(action) = p.fault(i) else {
                continue;
            };
            let fk = fault_key(action);
            for surface in p.surfaces() {
                let key = format!("backend.{fk}.{surface}");
                let id = CheckId::of(CheckFamily::Resilience, &m.name, surface);
                let rule =
                    format!("a backend `{fk}` reaches the client on the {surface} surface as the profile predicts");
                let judge = Judge::Profiled {
                    key: key.clone(),
                    reached: true,
                };
                let probe = match (p.on_surface(i, surface), p.s.gateway.profile.get(&key)) {
                    (None, _) => Err(format!(
                        "GitLab {} serves no feature whose reply is `{surface}` with family `{}`",
                        p.shapes().name(),
                        m.family
                    )),
                    (Some(_), None) => Err(format!(
                        "profile `{}` predicts no outcome for `{key}`",
                        p.s.gateway.profile.name
                    )),
                    (Some(q), Some(_)) => Ok(q),
                };
                p.check_or_skip(id, &rule, judge, probe);
            }
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        match &check.judge {
            Judge::Profiled { .. } => profiled(check, cx),
            _ => super::misfiled(check),
        }
    }
}

/// The client gets the profile's outcome for the check's key; the backend must have
/// been called (a scripted fault) or must not (a disabled feature).
pub fn profiled(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
    let Judge::Profiled { key, reached } = &check.judge else {
        return super::misfiled(check);
    };
    let seen = match seen(check, cx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let reply = seen.reply;
    let Some(outcome) = cx.profile.get(key) else {
        return skipped(format!("profile predicts nothing for `{key}`"));
    };
    let expected = format!(
        "{}{}",
        outcome.describe(),
        if *reached {
            ", after the backend was called"
        } else {
            ", and no backend traffic"
        }
    );
    match (reached, seen.hits.first()) {
        (true, None) => {
            return fail(
                expected,
                format!("no backend request; the client got {}", describe(reply)),
            );
        }
        (false, Some(h)) => {
            return fail(
                expected,
                format!(
                    "backend `{}` received it at {}; the client got {}",
                    h.backend,
                    h.path,
                    describe(reply)
                ),
            );
        }
        _ => {}
    }
    if let (true, Some(why)) = (strict(cx), &outcome.weakness) {
        // What the profile names as a real gateway's weakness is not what the
        // reference gateway may do: any error the client can see will do.
        let expected = format!(
            "an error the client sees, not what profile {} names as a weakness: {why}",
            cx.profile.name
        );
        return if reply.error.is_some() || reply.aborted.is_some() || reply.status >= 400 {
            pass(expected, describe(reply))
        } else {
            fail(expected, describe(reply))
        };
    }
    match super::outcome::matching(outcome, reply).map(|(o, actual)| (actual, &o.weakness)) {
        Ok((actual, Some(why))) => warning(
            expected,
            format!(
                "{actual} (a weakness of this gateway, per profile {}: {why})",
                cx.profile.name
            ),
        ),
        Ok((actual, None)) => pass(expected, actual),
        Err(actual) => fail(expected, actual),
    }
}
