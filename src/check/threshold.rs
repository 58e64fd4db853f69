//! `threshold`: the service levels a load phase must keep (`ttft.p99 < 1s`,
//! `error_rate < 1%`, ...), judged from its histograms and counters. Without a value
//! a threshold could not be judged: an error, not a breach.

/// One check result per threshold of a phase.
pub fn checks(
    r: &crate::report::load::PhaseReport,
    thresholds: &[crate::scenario::load::Threshold],
) -> Vec<crate::report::CheckResult> {
    thresholds
        .iter()
        .map(|t| {
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
        })
        .collect()
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
