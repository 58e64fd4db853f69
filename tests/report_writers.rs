//! Each load writer on a synthetic two-phase report (a streamed chat phase and a sweep):
//! the k6 export has what GitLab's widget reads and its numbers are exact, the HTML is
//! self-contained and well nested, the Markdown has one table per phase, the interval
//! logs read back, and the report still validates against the committed schema.

mod common;

use gateprobe::metrics::decode_histogram;
use gateprobe::report::{self, Format, Status, hlog, html, k6, markdown};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

#[test]
fn k6_export_has_what_the_gitlab_widget_reads() {
    let r = common::sample();
    let v: serde_json::Value = serde_json::from_str(&k6::render(&r)).expect("json");
    let m = &v["metrics"];
    // The widget: checks.passes / (passes + fails), http_req_waiting p(90)/p(95), http_reqs.rate.
    let passes = m["checks"]["passes"].as_u64().expect("passes");
    let fails = m["checks"]["fails"].as_u64().expect("fails");
    assert_eq!(
        (passes, fails),
        (3, 2),
        "skipped checks are not counted: {}",
        m["checks"]
    );
    assert_eq!(
        format!("{:.2}%", passes as f64 / (passes + fails) as f64 * 100.0),
        "60.00%"
    );
    let p90 = m["http_req_waiting"]["p(90)"].as_f64().expect("p90");
    let p95 = m["http_req_waiting"]["p(95)"].as_f64().expect("p95");
    assert!(p90 > 0.0 && p95 >= p90, "{}", m["http_req_waiting"]);
    let requests: u64 = r.load.iter().map(|p| p.transport.requests).sum();
    assert_eq!(m["http_reqs"]["count"].as_u64(), Some(requests));
    let rate = m["http_reqs"]["rate"].as_f64().expect("rate");
    assert!((rate - requests as f64 / 60.0).abs() < 1e-9, "{rate}");
    for key in ["avg", "min", "med", "max", "p(90)", "p(95)"] {
        assert!(m["http_req_duration"][key].is_number(), "http_req_duration.{key}");
    }
    assert!(v["root_group"]["checks"]["auth.mixtral-chat.key_forwarded"]["fails"] == 1);

    // Waiting is TTFT for the streamed phase and TTFB for the other, added exactly.
    let mut h = decode_histogram(&r.load[0].llm.histograms["ttft"].histogram).expect("ttft");
    h.add(decode_histogram(&r.load[1].transport.ttfb.histogram).expect("ttfb"))
        .expect("add");
    assert_eq!(p90, h.value_at_quantile(0.9) as f64 / 1000.0);
    assert_eq!(p95, h.value_at_quantile(0.95) as f64 / 1000.0);
    // Per-phase submetrics, tagged as k6 tags them.
    assert_eq!(
        m["http_reqs{phase:chat}"]["count"].as_u64(),
        Some(r.load[0].transport.requests)
    );
    let ttft_p90 = m["http_req_waiting{phase:chat}"]["p(90)"].as_f64().expect("chat p90");
    assert_eq!(ttft_p90, r.load[0].llm.histograms["ttft"].p90);
}

#[test]
fn k6_export_leaves_out_checks_when_there_are_none() {
    let mut r = common::sample();
    r.checks.clear();
    let v: serde_json::Value = serde_json::from_str(&k6::render(&r)).expect("json");
    assert!(v["metrics"].get("checks").is_none());
}

/// Checks that every element the page opens is closed, in order (void elements and
/// self-closed SVG elements aside), and returns the number of each opened tag.
fn check_nesting(html: &str) -> std::collections::BTreeMap<String, usize> {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with('!') {
            rest = &rest[rest.find('>').expect("unclosed declaration")..];
            continue;
        }
        let end = rest.find('>').expect("unclosed tag");
        let tag = &rest[..end];
        rest = &rest[end..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "stray `<` before {:?}", &rest[..rest.len().min(40)]);
        if tag.starts_with('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "closing </{name}>");
        } else if !(tag.ends_with('/') || VOID.contains(&name.as_str())) {
            *seen.entry(name.clone()).or_insert(0) += 1;
            if name == "style" {
                rest = &rest[rest.find("</style>").expect("style closed")..];
            }
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    seen
}

#[test]
fn html_is_self_contained_escaped_and_well_nested() {
    let r = common::sample();
    let page = html::render(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg"));
    for banned in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<iframe", "<img",
    ] {
        assert!(!page.contains(banned), "found {banned}");
    }
    assert!(page.contains("default-src 'none'"), "the CSP forbids loading anything");
    // Text from the report is escaped: a phase named `code <sweep>` and a check's actual.
    assert!(page.contains("code &lt;sweep&gt;") && !page.contains("<sweep>"));
    assert!(page.contains("broken &lt;b&gt;here&lt;/b&gt;") && !page.contains("<b>here"));
    let tags = check_nesting(&page);
    // Percentile curves: latency, TTFT, ITL, overhead, first byte, service for the chat
    // phase; latency, overhead, first byte, service for the sweep; 2 timeline charts
    // and an error chart per phase; one sweep chart.
    assert_eq!(tags["svg"], 6 + 4 + 2 * 3 + 1, "{tags:?}");
    assert_eq!(tags["section"], 2);
    assert!(page.contains("capacity 40.0 req/s"));
    assert!(page.contains("threshold.chat.error_rate"));
}

#[test]
fn markdown_has_one_table_per_phase_and_the_verdicts() {
    let r = common::sample();
    let md = markdown::render(&r);
    assert_eq!(md.matches("| requests | req/s | error rate |").count(), 2, "{md}");
    assert_eq!(md.matches("### Load phase").count(), 2);
    // Conformance totals leave thresholds out; failed checks are listed.
    assert!(
        md.contains("**Conformance:** 4 checks: 2 passed, **1 failed**, 0 errors, 1 skipped"),
        "{md}"
    );
    assert!(md.contains("| FAIL | `auth.mixtral-chat.key_forwarded` |"), "{md}");
    assert!(md.contains("broken \\<b\\>here\\</b\\> \\| there"), "escaped: {md}");
    assert!(md.contains("- Thresholds: 1 met, 1 breached"), "{md}");
    assert!(md.contains("`threshold.chat.error_rate`"));
    assert!(md.contains("- Capacity: **40.0 req/s**"), "{md}");
    assert!(md.contains("`code <sweep>`"), "code spans keep their text: {md}");
    // The chat row: requests, rate, error rate, then latency percentiles.
    let chat = &r.load[0];
    assert_eq!((chat.transport.requests, chat.rps), (1500, 50.0));
    let lat = &chat.transport.latency;
    let row = format!(
        "| 1,500 | 50.0 | {:.2}% | latency | {:.0} ms | {:.0} ms | 1,{:03.0} ms |",
        chat.error_rate * 100.0,
        lat.p50,
        lat.p90,
        lat.p99 - 1000.0
    );
    assert!(md.contains(&row), "{row} in {md}");
    assert!(!md.contains("Not valid"));
}

#[test]
fn markdown_warns_about_an_invalid_phase_and_covers_conformance_only_runs() {
    let mut r = common::sample();
    r.load[1].valid = false;
    let md = markdown::render(&r);
    assert_eq!(md.matches("⚠️ **Not valid:**").count(), 1, "{md}");

    let mut plain = common::sample();
    plain.load.clear();
    plain.checks.retain(|c| c.family != "threshold");
    let md = markdown::render(&plain);
    assert!(md.contains("**Conformance:** 4 checks"));
    assert!(!md.contains("Load phase"));
    assert!(md.starts_with("## ❌"), "a failed check fails the summary: {md}");
}

#[test]
fn hlog_has_one_interval_per_timeline_point() {
    let r = common::sample();
    assert_eq!(hlog::file_names(&r), ["chat.hlog", "code__sweep_.hlog"]);
    for p in &r.load {
        let bytes = hlog::render(&r, p);
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(text.contains("#[Histogram log format version 1.3]"));
        assert!(text.contains("#[StartTime: 1768471200.000"), "{}", &text[..300]);
        let mut n = 0;
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(iv) = entry.expect("parse") {
                let point = &p.timeline[n];
                assert_eq!(iv.start_timestamp().as_secs_f64(), point.t_s);
                assert_eq!(iv.duration().as_secs_f64(), 1.0);
                let h = decode_histogram(iv.encoded_histogram()).expect("decode");
                assert_eq!(h, decode_histogram(&point.latency.histogram).expect("decode"));
                n += 1;
            }
        }
        assert_eq!(n, p.timeline.len());
    }
}

#[test]
fn write_all_writes_load_formats_only_for_load_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = common::sample();
    let written = report::write_all(&r, dir.path()).expect("write");
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "gateprobe.json",
            "junit.xml",
            "summary.md",
            "report.html",
            "load-performance.json",
            "chat.hlog",
            "code__sweep_.hlog"
        ]
    );
    let mut plain = r.clone();
    plain.load.clear();
    let dir = tempfile::tempdir().expect("tempdir");
    let written = report::write_all(&plain, dir.path()).expect("write");
    assert_eq!(written.len(), 3);
    assert!(!Format::Html.applies_to(&plain) && Format::Markdown.applies_to(&plain));
}

#[test]
fn a_report_with_load_phases_validates_against_the_committed_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/report.schema.json").expect("schema")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut r = common::sample();
    r.load[0].shard = Some("1/4".into());
    // A sweep step without a value for its SLO metric (no request got a first token):
    // written as null, read back as NaN.
    let last = r.load[1].sweep.len() - 1;
    r.load[1].sweep[last].slo_value = f64::NAN;
    let v = serde_json::to_value(&r).expect("json");
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And it reads back into the same report.
    let back: report::RunReport = serde_json::from_value(v).expect("parse");
    assert_eq!(back.load[1].sweep.len(), r.load[1].sweep.len());
    assert!(back.load[1].sweep[last].slo_value.is_nan());
    assert!(!html::render(&back).contains("NaN") && !markdown::render(&back).contains("NaN"));
    assert_eq!(back.checks.iter().filter(|c| c.status == Status::Failed).count(), 2);
}

#[test]
fn writers_cope_with_a_phase_that_recorded_nothing() {
    let mut empty = common::phase("idle", false, &[], 0, None);
    empty.elapsed_ms = 0.0;
    let r = common::report(vec![empty], vec![]);
    let page = html::render(&r);
    check_nesting(&page);
    assert!(page.contains("No timeline recorded."));
    assert!(page.contains("No errors."));
    let v: serde_json::Value = serde_json::from_str(&k6::render(&r)).expect("json");
    assert_eq!(v["metrics"]["http_reqs"]["count"], 0);
    assert_eq!(v["metrics"]["http_reqs"]["rate"], 0.0);
    assert!(v["metrics"].get("http_req_waiting").is_none(), "no values, no trend");
    let md = markdown::render(&r);
    assert!(md.contains("| 0 | 0.0 | 0.0% | latency | – | – | – |"), "{md}");
    assert!(
        !hlog::render(&r, &r.load[0]).is_empty(),
        "a header even without intervals"
    );
}

#[test]
fn a_secret_that_is_a_common_word_is_redacted_without_breaking_the_report() {
    // A weak secret ("pass") is also part of a status (`passed`), of field names and,
    // by chance, of text: the text loses it, the structure keeps it, and the report
    // never falls back to its unredacted self.
    let mut r = common::sample();
    r.checks[0].actual = "sent pass to the backend".into();
    let secret = gateprobe::redact::Redactor::new([("gateway.url password".to_owned(), "pass".to_owned())]);
    let red = r.redacted(&secret);
    assert_eq!(
        red.checks[0].actual,
        "sent [redacted:gateway.url password] to the backend"
    );
    assert_eq!(
        red.checks.iter().map(|c| c.status).collect::<Vec<_>>(),
        r.checks.iter().map(|c| c.status).collect::<Vec<_>>()
    );
    assert_eq!(red.summary.passed, r.summary.passed);
    // Encoded histograms stay decodable.
    for (a, b) in red.load.iter().zip(&r.load) {
        assert_eq!(a.transport.latency.histogram, b.transport.latency.histogram);
    }
}

#[test]
fn sweeps_name_their_slo_and_show_each_step_on_its_own() {
    let r = common::sample();
    let p = &r.load[1];
    let html = gateprobe::report::html::render(&r);
    // The chart names the metric, its unit and the SLO, and draws the limit.
    assert!(
        html.contains("ttft.p90 (ms) by offered rate · SLO ttft.p90 &lt;= 300ms"),
        "chart title"
    );
    assert!(html.contains("SLO &lt;= 300 ms"), "limit line label");
    assert!(!html.contains(">SLO metric<"), "no anonymous axis");
    // Per-step percentiles, in the HTML and the Markdown.
    let step = &p.sweep[2];
    let l = step.latency_ms.expect("latency");
    let row = format!(
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        gateprobe::report::text::ms(l.p50),
        gateprobe::report::text::ms(l.p90),
        gateprobe::report::text::ms(l.p99)
    );
    assert!(html.contains(&row), "{row}");
    let md = gateprobe::report::markdown::render(&r);
    assert!(md.contains("| offered req/s | achieved req/s | error rate | ttft.p90 (ms) | latency p50 / p90 / p99 ms | TTFT p50 / p90 / p99 ms | SLO |"), "{md}");
    assert_eq!(
        md.matches(" | ✗ |").count(),
        p.sweep.iter().filter(|s| !s.met).count(),
        "{md}"
    );
    // The headline tiles describe the capacity step, not the pooled sweep.
    let at = p.headline_step().expect("a step");
    assert_eq!(at.rate, 40.0);
    assert!(
        html.contains("achieved req/s at 40.0 req/s offered"),
        "tiles at capacity"
    );
    assert!(!html.contains(&format!(
        "<b>{}</b><span>requests / s</span>",
        gateprobe::report::text::rate(p.rps)
    )));
    // And a sweep where nothing met the SLO says so.
    let mut none = r.clone();
    for s in &mut none.load[1].sweep {
        s.met = false;
    }
    none.load[1].capacity_rps = None;
    let html = gateprobe::report::html::render(&none);
    assert!(html.contains("capacity: no rate met the SLO") && html.contains("(SLO missed)"));
}
