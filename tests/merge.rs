//! `report::merge`: four shards merge into exactly the report one generator would have
//! written (counts, histograms bucket by bucket, percentiles, timelines, rates), checks
//! are deduplicated with the worst status winning, and inputs that cannot be one run
//! are refused with errors that say why.

mod common;

use gateprobe::metrics::{HistogramSummary, decode_histogram};
use gateprobe::report::load::PhaseReport;
use gateprobe::report::merge::{MergeError, merge};
use gateprobe::report::{RunReport, Status};

const SECONDS: u64 = 20;

fn shards(n: usize) -> (PhaseReport, Vec<PhaseReport>) {
    let all = common::events(7, 4000, SECONDS);
    let one = common::phase("chat", true, &all, SECONDS, None);
    let parts = (0..n)
        .map(|k| {
            let mine: Vec<common::Event> = all.iter().skip(k).step_by(n).cloned().collect();
            common::phase("chat", true, &mine, SECONDS, Some(&format!("{}/{n}", k + 1)))
        })
        .collect();
    (one, parts)
}

/// Same histogram (decoded, bucket by bucket) and same precomputed numbers; the
/// encodings themselves may differ in their header (each histogram's resized range).
fn assert_same(what: &str, a: &HistogramSummary, b: &HistogramSummary) {
    assert_eq!(
        decode_histogram(&a.histogram).expect("decode"),
        decode_histogram(&b.histogram).expect("decode"),
        "{what}"
    );
    let strip = |h: &HistogramSummary| HistogramSummary {
        histogram: String::new(),
        ..h.clone()
    };
    assert_eq!(strip(a), strip(b), "{what}");
}

#[test]
fn four_shards_merge_into_exactly_one_run() {
    let (one, parts) = shards(4);
    let reports: Vec<RunReport> = parts.into_iter().map(|p| common::report(vec![p], vec![])).collect();
    let merged = merge(&reports).expect("merge");
    let m = &merged.load[0];

    let (a, b) = (&m.transport, &one.transport);
    assert_eq!(
        (a.requests, a.ok, a.bytes, a.dropped, a.late),
        (b.requests, b.ok, b.bytes, b.dropped, b.late)
    );
    assert_eq!(a.errors, b.errors);
    assert!(a.errors.len() >= 3, "several error classes: {:?}", a.errors);
    for (what, x, y) in [
        ("latency", &a.latency, &b.latency),
        ("service", &a.service, &b.service),
        ("ttfb", &a.ttfb, &b.ttfb),
        ("lag", &a.lag, &b.lag),
    ] {
        assert_same(what, x, y);
    }
    assert_eq!(
        m.llm.histograms.keys().collect::<Vec<_>>(),
        one.llm.histograms.keys().collect::<Vec<_>>()
    );
    for (k, h) in &one.llm.histograms {
        assert_same(k, &m.llm.histograms[k], h);
    }
    assert_eq!(m.llm.output_tokens, one.llm.output_tokens);

    assert_eq!(m.timeline.len(), one.timeline.len());
    for (x, y) in m.timeline.iter().zip(&one.timeline) {
        assert_eq!((x.t_s, x.requests, x.errors), (y.t_s, y.requests, y.errors));
        assert_same(&format!("timeline {}", x.t_s), &x.latency, &y.latency);
    }

    assert_eq!(m.elapsed_ms, one.elapsed_ms);
    assert_eq!(m.rps, one.rps);
    assert_eq!(m.error_rate, one.error_rate);
    assert_eq!(m.output_tokens_per_s, one.output_tokens_per_s);
    assert_eq!(m.shard, None, "the merged report is the whole run");
    assert!(m.valid);
}

#[test]
fn a_single_report_merges_into_itself() {
    let r = common::sample();
    let m = merge(std::slice::from_ref(&r)).expect("merge");
    assert_eq!(
        serde_json::to_value(&m).expect("json"),
        serde_json::to_value(&r).expect("json")
    );
}

#[test]
fn elapsed_is_the_longest_shard_and_rates_are_recomputed() {
    let (_, mut parts) = shards(2);
    parts[1].elapsed_ms = 25_000.0;
    parts[1].valid = false;
    let total = parts[0].transport.requests + parts[1].transport.requests;
    let reports: Vec<RunReport> = parts.into_iter().map(|p| common::report(vec![p], vec![])).collect();
    let m = merge(&reports).expect("merge");
    let p = &m.load[0];
    assert_eq!(p.elapsed_ms, 25_000.0);
    assert_eq!(p.rps, total as f64 / 25.0);
    assert!(!p.valid, "one shard that fell behind makes the merged phase invalid");
}

#[test]
fn checks_are_deduplicated_and_the_worst_status_wins() {
    use common::check;
    let (_, parts) = shards(3);
    let checks = [
        vec![
            check("routing.a.backend", "routing", Status::Passed),
            check("auth.a.key_forwarded", "auth", Status::Passed),
            check("threshold.chat.ttft_p90", "threshold", Status::Passed),
        ],
        vec![
            check("routing.a.backend", "routing", Status::Passed),
            check("auth.a.key_forwarded", "auth", Status::Failed),
            check("threshold.chat.ttft_p90", "threshold", Status::Passed),
            check("streaming.duo_chat", "streaming", Status::Error),
        ],
        vec![
            check("routing.a.backend", "routing", Status::Skipped),
            check("auth.a.key_forwarded", "auth", Status::Error),
            check("streaming.duo_chat", "streaming", Status::Passed),
        ],
    ];
    let reports: Vec<RunReport> = parts
        .into_iter()
        .zip(checks)
        .map(|(p, c)| common::report(vec![p], c))
        .collect();
    let m = merge(&reports).expect("merge");
    let got: Vec<(&str, Status)> = m.checks.iter().map(|c| (c.id.as_str(), c.status)).collect();
    assert_eq!(
        got,
        [
            ("routing.a.backend", Status::Passed),
            ("auth.a.key_forwarded", Status::Failed),
            ("threshold.chat.ttft_p90", Status::Passed),
            ("streaming.duo_chat", Status::Error),
        ]
    );
    assert_eq!((m.summary.total, m.summary.failed, m.summary.errors), (4, 1, 1));
}

fn sharded(labels: &[&str]) -> Vec<RunReport> {
    let (_, parts) = shards(labels.len());
    parts
        .into_iter()
        .zip(labels)
        .map(|(mut p, l)| {
            p.shard = Some((*l).to_owned());
            common::report(vec![p], vec![])
        })
        .collect()
}

fn refused(reports: &[RunReport]) -> MergeError {
    match merge(reports) {
        Ok(_) => panic!("merged what it should have refused"),
        Err(e) => e,
    }
}

#[test]
fn mismatched_inputs_are_refused() {
    assert!(matches!(refused(&[]), MergeError::NoInputs));

    let mut other = common::sample();
    other.schema_version = 2;
    let e = refused(&[common::sample(), other]);
    assert_eq!(e.to_string(), "report 2 has schema_version 2, report 1 has 1");
    assert_eq!(e.input(), Some(2));

    let mut fewer = common::sample();
    fewer.load.pop();
    let e = refused(&[common::sample(), fewer]);
    assert_eq!(
        e.to_string(),
        "report 2 has load phases [chat], report 1 has [chat, code <sweep>]"
    );

    let mut model = common::sample();
    model.load[0].model = "other".into();
    let e = refused(&[common::sample(), model]);
    assert_eq!(e.to_string(), "phase `chat` of report 2 differs from report 1 in model");

    let mut renamed = common::sample();
    renamed.scenario.name = "another".into();
    assert!(matches!(
        refused(&[common::sample(), renamed]),
        MergeError::Scenario { .. }
    ));
}

#[test]
fn overlapping_missing_and_odd_shards_are_refused() {
    let e = refused(&sharded(&["1/4", "2/4", "1/4", "4/4"]));
    assert_eq!(e.to_string(), "phase `chat`: reports 1 and 3 are both shard 1/4");
    let e = refused(&sharded(&["1/4", "2/4", "4/4"]));
    assert_eq!(e.to_string(), "phase `chat`: shard 3 of 4 missing");
    let e = refused(&sharded(&["1/4", "4/4"]));
    assert_eq!(e.to_string(), "phase `chat`: shards 2, 3 of 4 missing");
    let e = refused(&sharded(&["1/2", "2/3"]));
    assert_eq!(
        e.to_string(),
        "phase `chat`: report 2 is shard 2/3, but report 1 splits the phase into 2"
    );
    let e = refused(&sharded(&["0/2", "1/2"]));
    assert_eq!(
        e.to_string(),
        "phase `chat` of report 1: shard `0/2` is not I/N with 1 <= I <= N"
    );
    let mut mixed = sharded(&["1/2", "2/2"]);
    mixed[1].load[0].shard = None;
    let e = refused(&mixed);
    assert_eq!(e.to_string(), "phase `chat`: report 2 is not a shard, report 1 is");
    assert!(merge(&sharded(&["2/2", "1/2"])).is_ok(), "shards in any order");
}

#[test]
fn a_sweep_from_several_shards_is_refused_and_one_is_kept() {
    let a = common::sample();
    let mut b = common::sample();
    let e = refused(&[a.clone(), b.clone()]);
    assert_eq!(
        e.to_string(),
        "phase `code <sweep>` is a sweep in reports 1 and 2: sweeps are not sharded, run a sweep from one generator"
    );
    b.load[1].sweep.clear();
    b.load[1].capacity_rps = None;
    let m = merge(&[b.clone(), a.clone()]).expect("one sweep merges");
    assert_eq!(m.load[1].sweep.len(), a.load[1].sweep.len());
    assert_eq!(m.load[1].capacity_rps, Some(40.0));
    // As sharded runs write them: the sweep only in shard 1's report, in any order.
    let mut a = a;
    a.load[0].shard = Some("1/2".into());
    b.load[0].shard = Some("2/2".into());
    b.load.remove(1);
    for inputs in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let m = merge(&inputs).expect("a sweep of shard 1 only merges");
        assert_eq!(m.load.len(), 2);
        assert_eq!(m.load[1].sweep.len(), a.load[1].sweep.len());
        assert_eq!(m.load[1].transport.requests, a.load[1].transport.requests);
        assert_eq!(
            m.load[0].transport.requests,
            a.load[0].transport.requests + b.load[0].transport.requests
        );
    }
    // A phase that is not a sweep cannot be missing, nor a sweep from a whole run.
    let mut c = a.clone();
    c.load.remove(0);
    let mut whole = common::sample();
    whole.load.remove(1);
    assert!(matches!(refused(&[common::sample(), whole]), MergeError::Phases { .. }));
    assert_eq!(
        refused(&[a, c]).to_string(),
        "report 2 has load phases [code <sweep>], report 1 has [chat, code <sweep>]"
    );
}

#[test]
fn a_corrupt_histogram_is_refused() {
    let mut bad = common::sample();
    bad.load[0].llm.histograms.get_mut("ttft").expect("ttft").histogram = "not base64!".into();
    let e = refused(&[common::sample(), bad]);
    assert!(
        e.to_string()
            .starts_with("phase `chat` of report 2: ttft: histogram is not valid base64"),
        "{e}"
    );
}
