//! What a judge decides about one check: the typed [`Verdict`], and the evidence a
//! check reads ([`Seen`]): its first request's reply and every backend request any of
//! its requests caused.

use super::{Ctx, ProbeOutcome};
use crate::adapter::Reply;
use crate::mock::journal::Entry;
use crate::plan::PlannedCheck;
use crate::report::Status;

/// A judge's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Passed, failed, error, skipped or a tolerated warning.
    pub status: Status,
    /// What the rule wants, in words.
    pub expected: String,
    /// What happened.
    pub actual: String,
    /// The root cause a failure points at, for the diagnosis.
    pub cause: Option<super::diagnosis::Cause>,
    /// The correlation id of the request that broke the rule, when it was not the
    /// first: its evidence is reported too.
    pub culprit: Option<String>,
}

impl Verdict {
    fn new(status: Status, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Verdict {
            status,
            expected: expected.into(),
            actual: actual.into(),
            cause: None,
            culprit: None,
        }
    }

    /// The root cause this failure points at.
    pub fn because(mut self, cause: super::diagnosis::Cause) -> Self {
        if self.status == Status::Failed {
            self.cause = Some(cause);
        }
        self
    }

    /// The request that broke the rule.
    pub fn at(mut self, correlation_id: &str) -> Self {
        self.culprit = Some(correlation_id.to_owned());
        self
    }
}

/// The rule was kept.
pub fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::new(Status::Passed, expected, actual)
}

/// The rule was broken.
pub fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::new(Status::Failed, expected, actual)
}

/// The harness could not tell.
pub fn error(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::new(Status::Error, expected, actual)
}

/// The rule does not apply; `why` says so.
pub fn skipped(why: impl Into<String>) -> Verdict {
    Verdict::new(Status::Skipped, String::new(), why)
}

/// A broken rule the profile tolerates, quoting why.
pub fn warning(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::new(Status::Warning, expected, actual)
}

/// The evidence of a check over its requests.
pub struct Seen<'a> {
    /// The first request's outcome: the one the rule is about.
    pub o: &'a ProbeOutcome,
    /// Its reply.
    pub reply: &'a Reply,
    /// Every backend request any of the check's requests caused, in request order.
    pub hits: Vec<&'a Entry>,
}

/// The evidence of `check`, or the verdict of a check that cannot be judged: its
/// first request never ran, or got no reply.
pub fn seen<'a>(check: &PlannedCheck, cx: &'a Ctx<'_>) -> Result<Seen<'a>, Verdict> {
    let Some(&first) = check.probes.first() else {
        return Err(error("", "the check has no request to judge"));
    };
    let o = &cx.outcomes[first];
    let reply = match &o.result {
        None => {
            let why = cx.not_run.unwrap_or("the run stopped first");
            return Err(error("", format!("not run: {why}")));
        }
        Some(Err(e)) => return Err(error("a reply from the gateway", format!("no reply ({e})"))),
        Some(Ok(r)) => r,
    };
    let hits = check.probes.iter().flat_map(|&p| cx.outcomes[p].hits.iter()).collect();
    Ok(Seen { o, reply, hits })
}

/// How a reply reads in a check's `actual`.
pub fn describe(r: &Reply) -> String {
    let end = match &r.aborted {
        Some(a) => format!(", the body breaking off ({a})"),
        None => String::new(),
    };
    match &r.error {
        Some(e) => format!("{e}{end}"),
        None if r.content.is_empty() => format!("{} with empty content{end}", r.status),
        None => format!("{} with content{end}", r.status),
    }
}
