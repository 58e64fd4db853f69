//! Number formatting and the labels of load metrics, shared by the human-readable
//! writers (Markdown, HTML, `gateprobe compare`) so the same value reads the same way
//! in every output.

use std::collections::BTreeMap;

use crate::metrics::HistogramSummary;

use super::load::PhaseReport;

/// Milliseconds with as many decimals as the magnitude deserves: three significant
/// digits below 100 ms (histograms keep three), whole milliseconds above.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        thousands(v.round() as i64)
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A sweep's capacity with its bound, `None` when the phase found none to tell:
/// `40 req/s` (the highest swept rate that met the SLO, the next one broke it), or
/// `>= 40 req/s` (the SLO never broke: every rate swept met it, or the sweep was
/// interrupted), with `≥` for display when `symbol`.
pub fn capacity(p: &PhaseReport, symbol: bool) -> Option<String> {
    let c = p.capacity_rps?;
    let at_least = if symbol { "≥ " } else { ">= " };
    Some(format!(
        "{}{} req/s",
        if p.capacity_lower_bound { at_least } else { "" },
        rate(c)
    ))
}

/// A count with thin grouping: `12,345`.
pub fn count(n: u64) -> String {
    thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A rate (requests or tokens per second): one decimal below 1,000, whole above.
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        thousands(v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// A fraction as a percentage: `0.0123` -> `1.23%`.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "–".into();
    }
    let p = fraction * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The latency-like histograms of a phase worth showing, in reading order, each with
/// its label: end-to-end latency first, then the LLM metrics, then the rest of the
/// transport ones. Histograms with no values are left out.
pub fn phase_histograms(p: &PhaseReport) -> Vec<(&'static str, String, &HistogramSummary)> {
    let mut out: Vec<(&'static str, String, &HistogramSummary)> = Vec::new();
    let t = &p.transport;
    out.push(("latency", "latency".into(), &t.latency));
    let llm = &p.llm.histograms;
    for key in LLM_ORDER {
        if let Some(h) = llm.get(*key) {
            out.push((key, label(key), h));
        }
    }
    for (key, h) in llm {
        if !LLM_ORDER.contains(&key.as_str()) {
            out.push(("other", label(key), h));
        }
    }
    out.push(("ttfb", "first byte".into(), &t.ttfb));
    out.push(("service", "service time".into(), &t.service));
    out.push(("lag", "schedule lag".into(), &t.lag));
    out.retain(|(_, _, h)| h.count > 0);
    out
}

/// LLM histogram keys in the order readers expect them.
pub const LLM_ORDER: &[&str] = &[
    "ttft",
    "itl",
    "tpot",
    "gateway_overhead",
    "overhead_request",
    "overhead_response",
];

/// The display label of an LLM histogram key.
pub fn label(key: &str) -> String {
    match key {
        "ttft" => "TTFT".into(),
        "itl" => "ITL".into(),
        "tpot" => "TPOT".into(),
        "gateway_overhead" => "gateway overhead".into(),
        "overhead_request" => "overhead (request)".into(),
        "overhead_response" => "overhead (response)".into(),
        other => other.replace('_', " "),
    }
}

/// Errors by class with the LLM-level empty replies added, largest first.
pub fn error_breakdown(p: &PhaseReport) -> Vec<(String, u64)> {
    let mut all: BTreeMap<String, u64> = p.transport.errors.clone();
    if p.llm.empty_content > 0 {
        *all.entry("empty_content".into()).or_insert(0) += p.llm.empty_content;
    }
    let mut v: Vec<(String, u64)> = all.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Text from the network or a scenario as one line: line breaks and tabs become
/// spaces and other control characters U+FFFD, so a reply cannot forge or hide lines
/// of a log or a table, or drive a terminal with escape sequences.
pub fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .into()
}

/// A caveat on a phase's figures: a bold lead, if any, and its text.
pub struct Warning {
    /// Shown first, in bold.
    pub lead: Option<&'static str>,
    /// The sentence.
    pub text: String,
}

/// Why a phase's figures cannot be trusted, for every report that shows the phase:
/// the generator missed its schedule, or requests waited for a free connection.
pub fn phase_warnings(t: &crate::metrics::Snapshot, valid: bool) -> Vec<Warning> {
    let mut out = Vec::new();
    if !valid {
        out.push(Warning {
            lead: Some("Not valid:"),
            text: format!(
                "the generator could not keep its schedule (schedule lag p99 {} ms); these latencies describe the generator as much as the gateway.",
                ms(t.lag.p99)
            ),
        });
    }
    if t.dropped > 0 || t.late > 0 {
        out.push(Warning {
            lead: None,
            text: format!(
                "{} requests were sent late and {} dropped because every connection was busy.",
                count(t.late),
                count(t.dropped)
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(ms(1234.4), "1,234");
        assert_eq!(ms(123.44), "123");
        assert_eq!(ms(12.345), "12.3");
        assert_eq!(ms(1.2345), "1.23");
        assert_eq!(ms(0.1234), "0.123");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(rate(49.96), "50.0");
        assert_eq!(rate(25_000.4), "25,000");
        assert_eq!(percent(0.0123), "1.23%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(0.5), "50.0%");
    }
}
