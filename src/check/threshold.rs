//! `threshold`: the service levels a load phase must keep (`ttft.p99 < 1s`,
//! `error_rate < 1%`, ...), judged from its histograms and counters. Without a value
//! a threshold could not be judged: an error, not a breach.
//!
//! Every phase also keeps one implicit threshold, `threshold.<phase>.successes`: at
//! least one request succeeded. A load phase against a gateway where nothing listens
//! (300 connect errors) or that fails every request measured nothing, and its run
//! must not pass, thresholds or not.

/// One check result per threshold of a phase, after its implicit `successes`.
pub fn checks(
    r: &crate::report::load::PhaseReport,
    thresholds: &[crate::scenario::load::Threshold],
) -> Vec<crate::report::CheckResult> {
    std::iter::once(successes(r))
        .chain(thresholds.iter().map(|t| threshold(r, t)))
        .collect()
}

/// `threshold.<phase>.successes`: an error when no request got a reply (nothing to
/// measure), a failure when replies came and none succeeded.
fn successes(r: &crate::report::load::PhaseReport) -> crate::report::CheckResult {
    use crate::report::Status;
    let t = &r.transport;
    let answered = t.ok > 0
        || t.errors
            .keys()
            .any(|k| k.starts_with("status_") || k == "empty_content");
    let (status, actual) = if t.ok > 0 {
        (Status::Passed, format!("{} of {} requests succeeded", t.ok, t.requests))
    } else if t.requests == 0 {
        (Status::Error, "no request was sent: nothing was measured".to_owned())
    } else if answered {
        (
            Status::Failed,
            format!("none of {} requests succeeded ({})", t.requests, r.errors_line()),
        )
    } else {
        (
            Status::Error,
            format!(
                "none of {} requests got a reply ({}): nothing was measured",
                t.requests,
                r.errors_line()
            ),
        )
    };
    crate::report::CheckResult {
        id: format!("threshold.{}.successes", r.name),
        family: "threshold".into(),
        rule: "a load phase gets at least one successful response".into(),
        status,
        expected: "at least one successful response".into(),
        actual,
        evidence: Vec::new(),
        profile: None,
    }
}

fn threshold(r: &crate::report::load::PhaseReport, t: &crate::scenario::load::Threshold) -> crate::report::CheckResult {
    let (ok, value) = crate::load::phase::judge(r, t);
    let unit = match t.metric {
        crate::scenario::load::Metric::Histogram { .. } => " ms",
        _ => "",
    };
    let actual = match value {
        Some(v) if matches!(t.metric, crate::scenario::load::Metric::ErrorRate) => format!("{:.3}%", v * 100.0),
        Some(v) => format!("{v:.3}{unit}"),
        None => "no value was recorded: nothing to judge".to_owned(),
    };
    crate::report::CheckResult {
        id: format!("threshold.{}.{}", r.name, t.metric.id()),
        family: "threshold".into(),
        rule: t.text.clone(),
        // Without a value the threshold could not be judged: an error (exit 3),
        // not a breach of the SLO.
        status: match (ok, value) {
            (_, None) => crate::report::Status::Error,
            (true, _) => crate::report::Status::Passed,
            (false, _) => crate::report::Status::Failed,
        },
        expected: t.text.clone(),
        actual,
        evidence: Vec::new(),
        profile: None,
    }
}

/// Judges every phase's thresholds again (after `merge`), replacing the threshold
/// checks the report had.
pub fn rejudge(report: &mut crate::report::RunReport) {
    report.checks.retain(|c| c.family != "threshold");
    for p in &report.load {
        report.checks.extend(checks(p, &p.thresholds));
    }
    report.summary = crate::report::Summary::of(&report.checks);
}
