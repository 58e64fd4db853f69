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
    let (mut a2, mut b2) = (a.clone(), b.clone());
    a2.load[0].shard = Some("1/2".into());
    b2.load[0].shard = Some("2/2".into());
    let e = refused(&[a2, b2]);
    assert_eq!(
        e.to_string(),
        "phase `code <sweep>` is a sweep in reports 1 and 2: sweeps are not sharded, run a sweep from one generator"
    );
    b.load[1].sweep.clear();
    b.load[1].capacity_rps = None;
    // Two whole runs are not shards of one (issue 12: they used to be added up).
    assert!(matches!(
        refused(&[b.clone(), a.clone()]),
        MergeError::NotAShard { input: 1 }
    ));
    // As sharded runs write them: the sweep only in shard 1's report, in any order.
    let mut a = a;
    a.load[0].shard = Some("1/2".into());
    b.load[0].shard = Some("2/2".into());
    b.load.remove(1);
    for inputs in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let m = merge(&inputs).expect("a sweep of shard 1 only merges");
        assert_eq!(m.load.len(), 2);
        assert_eq!(m.load[1].sweep.len(), a.load[1].sweep.len());
        assert_eq!(m.load[1].capacity_rps, Some(40.0));
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
    let mut shards = sharded(&["1/2", "2/2"]);
    shards[1].load[0]
        .llm
        .histograms
        .get_mut("ttft")
        .expect("ttft")
        .histogram = "not base64!".into();
    let e = refused(&shards);
    assert!(
        e.to_string()
            .starts_with("phase `chat` of report 2: ttft: histogram is not valid base64"),
        "{e}"
    );
}

#[test]
fn separate_runs_are_not_shards_and_are_refused() {
    // Two runs of a 20/s schedule one after the other used to merge into "40 req/s".
    let (one, _) = shards(1);
    let runs = [
        common::report(vec![one.clone()], vec![]),
        common::report(vec![one], vec![]),
    ];
    let e = refused(&runs);
    assert!(matches!(e, MergeError::NotAShard { input: 1 }), "{e}");
    assert!(e.to_string().contains("only the shards of one run"), "{e}");
    // Without load phases too: a report-level shard label tells shards apart.
    let whole = [common::report(vec![], vec![]), common::report(vec![], vec![])];
    assert!(matches!(refused(&whole), MergeError::NotAShard { .. }));
    let mut halves = whole.clone();
    halves[0].shard = Some("1/2".into());
    halves[1].shard = Some("2/2".into());
    assert!(merge(&halves).is_ok());
    halves[1].shard = Some("1/2".into());
    assert_eq!(
        refused(&halves).to_string(),
        "the run: reports 1 and 2 are both shard 1/2"
    );
}

#[test]
fn shards_of_another_version_of_the_scenario_are_refused() {
    let mut s = sharded(&["1/2", "2/2"]);
    s[1].scenario.digest = Some("fedcba9876543210".into());
    let e = refused(&s);
    assert!(matches!(e, MergeError::ScenarioChanged { input: 2, .. }), "{e}");
}

/// An encoded V2-deflate histogram whose inflated header says what `v2` holds.
fn encoded(v2: &[u8], claimed_deflated: Option<u32>) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(v2).expect("deflate");
    let deflated = z.finish().expect("deflate");
    let mut out = 0x1c84_9314u32.to_be_bytes().to_vec();
    out.extend_from_slice(&claimed_deflated.unwrap_or(deflated.len() as u32).to_be_bytes());
    out.extend_from_slice(&deflated);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// A V2 header (and `payload`) claiming `payload_len` bytes, range `low..high` at
/// `digits`.
fn v2(payload_len: u32, digits: u32, low: u64, high: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = 0x1c84_9313u32.to_be_bytes().to_vec();
    b.extend_from_slice(&payload_len.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&digits.to_be_bytes());
    b.extend_from_slice(&low.to_be_bytes());
    b.extend_from_slice(&high.to_be_bytes());
    b.extend_from_slice(&1.0f64.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn histograms_that_claim_more_than_they_hold_are_refused_before_allocating() {
    let cases = [
        // The 60 bytes claiming a 4 GiB payload.
        (
            encoded(&v2(u32::MAX, 3, 1, 2_000_000, &[2]), None),
            "claims a 4294967295-byte payload",
        ),
        (
            encoded(&v2(1, 3, 1, 2_000_000, &[2]), Some(u32::MAX)),
            "claims 4294967295 compressed bytes",
        ),
        // A range whose counts array alone would take gigabytes.
        (encoded(&v2(1, 5, 1, u64::MAX / 2, &[2]), None), "over the 131072 limit"),
        (encoded(&v2(1, 9, 1, 1000, &[2]), None), "is not a histogram's"),
        // Counts summing past 2^64 (zig-zag varints of i64::MAX, three times).
        (
            encoded(
                &v2(
                    27,
                    3,
                    1,
                    2_000_000,
                    &[[0xfe_u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]; 3].concat(),
                ),
                None,
            ),
            "counts overflow",
        ),
    ];
    for (h, says) in cases {
        let e = gateprobe::metrics::decode_histogram(&h).expect_err("refused");
        assert!(e.to_string().contains(says), "{says}: {e}");
    }
    // What gateprobe writes still decodes.
    let r = common::sample();
    assert!(decode_histogram(&r.load[0].transport.latency.histogram).is_ok());
}

#[test]
fn counters_that_would_overflow_are_refused_not_wrapped() {
    let mut s = sharded(&["1/2", "2/2"]);
    for p in &mut s {
        let t = &mut p.load[0].transport;
        t.ok += u64::MAX - t.requests;
        t.requests = u64::MAX;
    }
    // Each shard is consistent (ok + errors = requests); their sum is not a number.
    let e = refused(&s);
    assert!(e.to_string().contains("adds up past 2^64"), "{e}");
}

#[test]
fn a_report_of_many_wide_histograms_runs_out_of_budget_instead_of_time() {
    use gateprobe::metrics::HistogramSummary;
    // One value near an hour: a wide (but legal) counts array, a few bytes encoded.
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    h.record(1 << 40).expect("record");
    let wide = HistogramSummary::of(&h);
    let mut r = common::report(
        vec![common::phase("chat", true, &common::events(1, 10, 1), 1, None)],
        vec![],
    );
    let point = r.load[0].timeline[0].clone();
    r.load[0].timeline = (0..6000)
        .map(|i| gateprobe::report::load::TimelinePoint {
            t_s: f64::from(i),
            latency: wide.clone(),
            ..point.clone()
        })
        .collect();
    let e = refused(&[r]);
    assert!(e.to_string().contains("need more than"), "{e}");
}
