//! `<phase>.hlog`: one HdrHistogram interval log per load phase, with one interval per
//! timeline point (the latency histogram of the requests completed in that second,
//! tagged `latency`), for HistogramLogAnalyzer or `HistogramLogProcessor`. The log's
//! start time is the run's start; interval timestamps are seconds since the phase's
//! measured start, as in the timeline.
//!
//! Unlike the other writers this one renders per phase ([`render`] takes the phase),
//! because a phase is what HistogramLogAnalyzer opens; [`file_names`] gives each phase
//! a distinct, filesystem-safe name.

use std::time::{Duration, SystemTime};

use super::RunReport;
use super::load::PhaseReport;
use crate::metrics::decode_histogram;
use crate::metrics::hlog::IntervalLog;

/// Renders the interval log of one phase of `r`.
pub fn render(r: &RunReport, phase: &PhaseReport) -> Vec<u8> {
    let start = humantime::parse_rfc3339_weak(&r.started_at).unwrap_or(SystemTime::UNIX_EPOCH);
    let width = bucket_width(phase);
    let end = phase.elapsed_ms / 1000.0;
    // Writing into a Vec fails only on an invalid tag, and ours is fixed.
    let Ok(mut log) = IntervalLog::new(Vec::new(), start) else {
        return Vec::new();
    };
    for point in &phase.timeline {
        let Ok(h) = decode_histogram(&point.latency.histogram) else {
            continue;
        };
        // The last bucket is cut short by the end of the phase.
        let length = if end > point.t_s {
            width.min(end - point.t_s)
        } else {
            width
        };
        let _ = log.write(
            Some("latency"),
            Duration::try_from_secs_f64(point.t_s).unwrap_or_default(),
            Duration::try_from_secs_f64(length).unwrap_or_default(),
            &h,
        );
    }
    log.finish().unwrap_or_default()
}

/// The width of the timeline's buckets in seconds: the smallest step between points
/// (one second as the runner writes them), or one second for a single point.
pub fn bucket_width(phase: &PhaseReport) -> f64 {
    phase
        .timeline
        .windows(2)
        .map(|w| w[1].t_s - w[0].t_s)
        .filter(|d| *d > 0.0 && d.is_finite())
        .fold(None, |acc: Option<f64>, d| Some(acc.map_or(d, |a| a.min(d))))
        .unwrap_or(1.0)
}

/// One file name per phase, in phase order: the name with anything but letters,
/// digits, `-`, `_` and `.` replaced by `_`, made unique with a numeric suffix, plus
/// `.hlog`.
pub fn file_names(r: &RunReport) -> Vec<String> {
    crate::files::safe_names(r.load.iter().map(|p| p.name.as_str()), ".hlog", &[])
}
