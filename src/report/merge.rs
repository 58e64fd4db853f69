//! Merging the reports of the generators of one run (its shards, `run --shard I/N`)
//! into the report one generator would have written.
//!
//! The merge is exact: histograms are decoded and added bucket by bucket, then the
//! percentiles are recomputed from the sum (never averaged); counters and error
//! classes are summed; timelines are merged bucket by bucket; a phase's measured time
//! is the longest shard's, and the rates (requests, tokens, errors) are recomputed
//! from the sums. Conformance checks are deduplicated by id, the worst status winning
//! (failed, then error, then passed, then skipped), so a check that failed on one shard
//! fails the merged run. Threshold checks are deduplicated the same way but not
//! re-judged: a threshold judged on one shard's numbers says little about the sum, so
//! the caller re-evaluates thresholds on the merged phases.
//!
//! Inputs that cannot describe one run are refused: different schema versions,
//! scenarios (by name and by the digest of their file) or phase lists, reports that
//! are not shards (two separate runs cannot be added: a 20/s schedule run twice is not
//! a 40/s one), shard slices that overlap or leave a gap, and a sweep found in more
//! than one input (a sweep probes capacity step by step from one generator; its steps
//! cannot be added). The inputs are files anyone can write: every histogram is
//! decoded within a [`DecodeBudget`] for the whole merge and every counter is added
//! with overflow checks.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;

use super::load::{LlmMetrics, PhaseReport, SweepStep, TimelinePoint};
use super::{CheckResult, JournalInfo, RunReport, Status, Summary};
use crate::metrics::{
    DecodeBudget, DecodeError, HistogramSummary, MERGE_SLOTS, Recorder, add_histogram, checked,
    decode_histogram_within, histogram_slots,
};

/// Why reports cannot be merged. Inputs are numbered from 1 in the order given.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no reports to merge")]
    NoInputs,
    /// The reports were written by incompatible versions.
    #[error("report {input} has schema_version {found}, report 1 has {expected}")]
    SchemaVersion {
        /// The input that differs.
        input: usize,
        /// Its version.
        found: u32,
        /// The first input's version.
        expected: u32,
    },
    /// Several reports, not all of them shards.
    #[error(
        "report {input} is not a shard: only the shards of one run (`gateprobe run --shard I/N`) are merged, and reports of separate runs cannot be added (compare them with `gateprobe compare`)"
    )]
    NotAShard {
        /// The input that is not a shard.
        input: usize,
    },
    /// The same scenario name, but another file.
    #[error(
        "report {input} ran another version of scenario `{scenario}` than report 1 (its file's digest differs): shards of one run run the same file"
    )]
    ScenarioChanged {
        /// The input that differs.
        input: usize,
        /// The scenario's name.
        scenario: String,
    },
    /// The reports come from different scenarios.
    #[error("report {input} is of scenario `{found}`, report 1 of `{expected}`")]
    Scenario {
        /// The input that differs.
        input: usize,
        /// Its scenario.
        found: String,
        /// The first input's scenario.
        expected: String,
    },
    /// The reports do not have the same load phases.
    #[error("report {input} has load phases [{}], report {reference} has [{}]", found.join(", "), expected.join(", "))]
    Phases {
        /// The input that differs.
        input: usize,
        /// Its phase names.
        found: Vec<String>,
        /// The input with the most phases, which the others are held to.
        reference: usize,
        /// Its phase names.
        expected: Vec<String>,
    },
    /// A phase of the same name sends something else.
    #[error("phase `{phase}` of report {input} differs from report {reference} in {what}")]
    PhaseDiffers {
        /// The input that differs.
        input: usize,
        /// The input it was compared with.
        reference: usize,
        /// The phase.
        phase: String,
        /// Which setting differs.
        what: &'static str,
    },
    /// Some inputs are shards of a phase and others are not.
    #[error("{phase}: report {input} {} a shard, report 1 {}", if *sharded { "is" } else { "is not" }, if *sharded { "is not" } else { "is" })]
    ShardMixed {
        /// The phase.
        phase: String,
        /// The input that differs.
        input: usize,
        /// Whether that input is a shard.
        sharded: bool,
    },
    /// A shard label that is not `I/N` with 1 <= I <= N.
    #[error("{phase} of report {input}: shard `{shard}` is not I/N with 1 <= I <= N")]
    ShardSyntax {
        /// The input.
        input: usize,
        /// The phase.
        phase: String,
        /// The label.
        shard: String,
    },
    /// Shards that split the phase into different numbers of slices.
    #[error("{phase}: report {input} is shard {shard}, but report 1 splits {} into {total}", if phase.starts_with("phase") { "the phase" } else { "the run" })]
    ShardTotal {
        /// The phase.
        phase: String,
        /// The input that differs.
        input: usize,
        /// Its label.
        shard: String,
        /// The first input's number of shards.
        total: u32,
    },
    /// Two inputs hold the same slice.
    #[error("{phase}: reports {first} and {second} are both shard {index}/{total}")]
    ShardOverlap {
        /// The phase.
        phase: String,
        /// The shard index.
        index: u32,
        /// The number of shards.
        total: u32,
        /// The first input holding it.
        first: usize,
        /// The second input holding it.
        second: usize,
    },
    /// Slices nobody brought.
    #[error("{phase}: shard{} {} of {total} missing", if missing.len() == 1 { "" } else { "s" }, missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    ShardMissing {
        /// The phase.
        phase: String,
        /// The missing indices.
        missing: Vec<u32>,
        /// The number of shards.
        total: u32,
    },
    /// A sweep in more than one input.
    #[error("phase `{phase}` is a sweep in reports {}: sweeps are not sharded, run a sweep from one generator", inputs.iter().map(usize::to_string).collect::<Vec<_>>().join(" and "))]
    SweepSharded {
        /// The phase.
        phase: String,
        /// The inputs that hold sweep steps.
        inputs: Vec<usize>,
    },
    /// A histogram or error counter that does not decode.
    #[error("phase `{phase}` of report {input}: {what}: {source}")]
    Decode {
        /// The input.
        input: usize,
        /// The phase.
        phase: String,
        /// Which histogram.
        what: String,
        /// Why.
        source: DecodeError,
    },
}

impl MergeError {
    /// The input (numbered from 1) the error is about, when it is about one.
    pub fn input(&self) -> Option<usize> {
        match self {
            MergeError::SchemaVersion { input, .. }
            | MergeError::NotAShard { input }
            | MergeError::ScenarioChanged { input, .. }
            | MergeError::Scenario { input, .. }
            | MergeError::Phases { input, .. }
            | MergeError::PhaseDiffers { input, .. }
            | MergeError::ShardMixed { input, .. }
            | MergeError::ShardSyntax { input, .. }
            | MergeError::ShardTotal { input, .. }
            | MergeError::Decode { input, .. } => Some(*input),
            _ => None,
        }
    }
}

/// Merges `reports` into one. Thresholds are carried over, deduplicated, but not
/// re-judged: re-evaluate them on the result.
pub fn merge(reports: &[RunReport]) -> Result<RunReport, MergeError> {
    let first = reports.first().ok_or(MergeError::NoInputs)?;
    // Sweeps run on shard 1 only, so the other shards' reports lack them: the phases
    // are those of the report with the most, and a shard's report may lack its sweeps.
    let (reference_index, reference) =
        reports.iter().enumerate().fold(
            (0, first),
            |best, (i, r)| if r.load.len() > best.1.load.len() { (i, r) } else { best },
        );
    let names: Vec<String> = reference.load.iter().map(|p| p.name.clone()).collect();
    for (i, r) in reports.iter().enumerate() {
        let input = i + 1;
        if r.schema_version != first.schema_version {
            return Err(MergeError::SchemaVersion {
                input,
                found: r.schema_version,
                expected: first.schema_version,
            });
        }
        if r.scenario.name != first.scenario.name {
            return Err(MergeError::Scenario {
                input,
                found: r.scenario.name.clone(),
                expected: first.scenario.name.clone(),
            });
        }
        if let (Some(a), Some(b)) = (&first.scenario.digest, &r.scenario.digest)
            && a != b
        {
            return Err(MergeError::ScenarioChanged {
                input,
                scenario: r.scenario.name.clone(),
            });
        }
        let theirs: Vec<String> = r.load.iter().map(|p| p.name.clone()).collect();
        let shard = r.load.iter().any(|p| p.shard.is_some());
        let expected: Vec<&String> = reference
            .load
            .iter()
            .filter(|p| !shard || p.sweep.is_empty() || theirs.contains(&p.name))
            .map(|p| &p.name)
            .collect();
        if theirs.iter().collect::<Vec<_>>() != expected {
            return Err(MergeError::Phases {
                input,
                found: theirs,
                reference: reference_index + 1,
                expected: names,
            });
        }
        for b in &r.load {
            let Some(a) = reference.load.iter().find(|p| p.name == b.name) else {
                continue;
            };
            let what = if a.feature != b.feature {
                "feature"
            } else if a.model != b.model {
                "model"
            } else if a.stream != b.stream {
                "streaming"
            } else if a.mode != b.mode {
                "mode"
            } else {
                continue;
            };
            return Err(MergeError::PhaseDiffers {
                input,
                reference: reference_index + 1,
                phase: a.name.clone(),
                what,
            });
        }
    }
    check_runs(reports)?;
    // What decoding every histogram would cost, found before any is decoded: a
    // crafted report of many wide histograms is refused at once, not after minutes.
    let mut budget = DecodeBudget::new(MERGE_SLOTS);
    for (i, r) in reports.iter().enumerate() {
        for p in &r.load {
            for (what, h) in histograms_of(p) {
                let err = decode_err(i + 1, &p.name, &what);
                histogram_slots(&h.histogram)
                    .and_then(|n| budget.charge(n))
                    .map_err(err)?;
            }
        }
    }
    let mut budget = DecodeBudget::new(MERGE_SLOTS);
    let load = names
        .iter()
        .map(|name| {
            let slices: Vec<&PhaseReport> = reports
                .iter()
                .filter_map(|r| r.load.iter().find(|p| &p.name == name))
                .collect();
            merge_phase(&slices, &mut budget)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let checks = merge_checks(reports);
    let mut aborted: Vec<String> = Vec::new();
    for a in reports.iter().filter_map(|r| r.aborted.as_ref()) {
        if !aborted.contains(a) {
            aborted.push(a.clone());
        }
    }
    Ok(RunReport {
        shard: None,
        seed: None,
        diagnosis: Vec::new(),
        schema_version: first.schema_version,
        tool: first.tool.clone(),
        scenario: first.scenario.clone(),
        gateway: first.gateway.clone(),
        started_at: earliest(reports.iter().map(|r| r.started_at.as_str())),
        duration_ms: reports.iter().map(|r| r.duration_ms).fold(0.0, f64::max),
        interrupted: reports.iter().any(|r| r.interrupted),
        aborted: if aborted.is_empty() {
            None
        } else {
            Some(aborted.join("; "))
        },
        summary: Summary::of(&checks),
        checks,
        journal: JournalInfo {
            entries: sum(reports.iter().map(|r| r.journal.entries)),
            dropped: sum(reports.iter().map(|r| r.journal.dropped)),
        },
        load,
    })
}

/// The earliest RFC 3339 timestamp (the first one if none parses).
fn earliest<'a>(stamps: impl Iterator<Item = &'a str>) -> String {
    let mut best: Option<(std::time::SystemTime, &str)> = None;
    let mut fallback = None;
    for s in stamps {
        fallback.get_or_insert(s);
        if let Ok(t) = humantime::parse_rfc3339_weak(s)
            && best.is_none_or(|(b, _)| t < b)
        {
            best = Some((t, s));
        }
    }
    best.map(|(_, s)| s).or(fallback).unwrap_or_default().to_owned()
}

/// How bad a status is when shards disagree: the worst one is reported.
fn severity(s: Status) -> u8 {
    match s {
        Status::Failed => 4,
        Status::Error => 3,
        Status::Warning => 2,
        Status::Passed => 1,
        Status::Skipped => 0,
    }
}

/// Checks by id in first-seen order, each the worst of its copies.
fn merge_checks(reports: &[RunReport]) -> Vec<CheckResult> {
    let mut out: Vec<CheckResult> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for c in reports.iter().flat_map(|r| &r.checks) {
        match at.get(&c.id) {
            Some(&i) => {
                if severity(c.status) > severity(out[i].status) {
                    out[i] = c.clone();
                }
            }
            None => {
                at.insert(c.id.clone(), out.len());
                out.push(c.clone());
            }
        }
    }
    out
}

/// Parses a shard label `I/N` (1-based).
fn parse_shard(s: &str) -> Option<(u32, u32)> {
    let (i, n) = s.split_once('/')?;
    let (i, n): (u32, u32) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (1..=n).contains(&i).then_some((i, n))
}

/// Checks that the reports are the shards of one run: a single report merges into
/// itself; several must each be a shard (`shard: I/N` on the report, or on its phases
/// for reports written before the field), of one split, each slice once.
fn check_runs(reports: &[RunReport]) -> Result<(), MergeError> {
    if reports.len() < 2 {
        return Ok(());
    }
    let labels: Vec<Option<&str>> = reports
        .iter()
        .map(|r| {
            r.shard
                .as_deref()
                .or_else(|| r.load.iter().find_map(|p| p.shard.as_deref()))
        })
        .collect();
    if labels.iter().all(Option::is_none) {
        return Err(MergeError::NotAShard { input: 1 });
    }
    // Shards with sharded phases are checked phase by phase (naming the phase);
    // without any, the reports' own labels are.
    if reports.iter().flat_map(|r| &r.load).all(|p| p.shard.is_none()) {
        return check_split("the run", &labels);
    }
    Ok(())
}

/// Checks that the slices of one phase are all shards of one split, each once, or all
/// unsharded.
fn check_shards(slices: &[&PhaseReport]) -> Result<(), MergeError> {
    let labels: Vec<Option<&str>> = slices.iter().map(|p| p.shard.as_deref()).collect();
    check_split(&format!("phase `{}`", slices[0].name), &labels)
}

/// Checks shard labels (one per input, `None`: not a shard) of `scope`: all shards of
/// one split, each once, or all unsharded.
fn check_split(scope: &str, labels: &[Option<&str>]) -> Result<(), MergeError> {
    let phase = scope.to_owned();
    let sharded = labels[0].is_some();
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let mut total = None;
    for (i, label) in labels.iter().enumerate() {
        let input = i + 1;
        let Some(label) = label else {
            if sharded {
                return Err(MergeError::ShardMixed {
                    phase,
                    input,
                    sharded: false,
                });
            }
            continue;
        };
        if !sharded {
            return Err(MergeError::ShardMixed {
                phase,
                input,
                sharded: true,
            });
        }
        let (index, n) = parse_shard(label).ok_or_else(|| MergeError::ShardSyntax {
            input,
            phase: phase.clone(),
            shard: (*label).to_owned(),
        })?;
        let n0 = *total.get_or_insert(n);
        if n != n0 {
            return Err(MergeError::ShardTotal {
                phase,
                input,
                shard: (*label).to_owned(),
                total: n0,
            });
        }
        if let Some(&first) = seen.get(&index) {
            return Err(MergeError::ShardOverlap {
                phase,
                index,
                total: n,
                first,
                second: input,
            });
        }
        seen.insert(index, input);
    }
    if let Some(n) = total {
        let missing: Vec<u32> = (1..=n).filter(|i| !seen.contains_key(i)).collect();
        if !missing.is_empty() {
            return Err(MergeError::ShardMissing {
                phase,
                missing,
                total: n,
            });
        }
    }
    Ok(())
}

/// Every encoded histogram of a phase, named.
fn histograms_of(p: &PhaseReport) -> impl Iterator<Item = (String, &HistogramSummary)> {
    let t = &p.transport;
    [
        ("latency", &t.latency),
        ("service", &t.service),
        ("ttfb", &t.ttfb),
        ("lag", &t.lag),
    ]
    .into_iter()
    .map(|(k, h)| (k.to_owned(), h))
    .chain(p.llm.histograms.iter().map(|(k, h)| (k.clone(), h)))
    .chain(
        p.timeline
            .iter()
            .map(|t| (format!("timeline at {} s", t.t_s), &t.latency)),
    )
}

/// A sum of counters that are not gated on (journal sizes): saturating.
fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0, u64::saturating_add)
}

/// A sum of counts read from files: an overflow is an error, never a wrap.
fn checked_sum(mut it: impl Iterator<Item = u64>, phase: &str, what: &str) -> Result<u64, MergeError> {
    it.try_fold(0u64, |a, b| checked(a, b, what))
        .map_err(decode_err(0, phase, what))
}

fn decode_err(input: usize, phase: &str, what: &str) -> impl FnOnce(DecodeError) -> MergeError {
    let (phase, what) = (phase.to_owned(), what.to_owned());
    move |source| MergeError::Decode {
        input,
        phase,
        what,
        source,
    }
}

/// Adds encoded histograms; `None` when there were none.
fn add_histograms<'a>(
    parts: impl Iterator<Item = (usize, &'a HistogramSummary)>,
    phase: &str,
    what: &str,
    budget: &mut DecodeBudget,
) -> Result<Option<HistogramSummary>, MergeError> {
    add_histograms_as(parts, phase, what, HistogramSummary::of, budget)
}

/// [`add_histograms`], summarised by `summary`.
fn add_histograms_as<'a>(
    parts: impl Iterator<Item = (usize, &'a HistogramSummary)>,
    phase: &str,
    what: &str,
    summary: fn(&Histogram<u64>) -> HistogramSummary,
    budget: &mut DecodeBudget,
) -> Result<Option<HistogramSummary>, MergeError> {
    let mut sum: Option<Histogram<u64>> = None;
    for (input, h) in parts {
        let d = decode_histogram_within(&h.histogram, budget).map_err(decode_err(input, phase, what))?;
        match &mut sum {
            None => sum = Some(d),
            Some(s) => add_histogram(s, &d, what).map_err(decode_err(input, phase, what))?,
        }
    }
    Ok(sum.map(|h| summary(&h)))
}

fn merge_phase(slices: &[&PhaseReport], budget: &mut DecodeBudget) -> Result<PhaseReport, MergeError> {
    let first = slices[0];
    let name = first.name.as_str();
    check_shards(slices)?;

    let with_sweep: Vec<usize> = slices
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.sweep.is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    if with_sweep.len() > 1 {
        return Err(MergeError::SweepSharded {
            phase: name.to_owned(),
            inputs: with_sweep,
        });
    }
    let (sweep, capacity_rps, capacity_lower_bound): (Vec<SweepStep>, Option<f64>, bool) = match with_sweep.first() {
        Some(&i) => {
            let p = slices[i - 1];
            (p.sweep.clone(), p.capacity_rps, p.capacity_lower_bound)
        }
        // No steps anywhere: keep a capacity if one input has it (all agree or one has it).
        None => slices
            .iter()
            .find(|p| p.capacity_rps.is_some())
            .map_or((Vec::new(), None, false), |p| {
                (Vec::new(), p.capacity_rps, p.capacity_lower_bound)
            }),
    };

    let mut transport: Option<Recorder> = None;
    for (i, p) in slices.iter().enumerate() {
        let rec = Recorder::from_snapshot_within(&p.transport, budget).map_err(decode_err(i + 1, name, "transport"))?;
        match &mut transport {
            None => transport = Some(rec),
            Some(t) => t.try_add(&rec).map_err(decode_err(i + 1, name, "transport"))?,
        }
    }
    let transport = transport
        .map(|t| t.snapshot())
        .unwrap_or_else(|| first.transport.clone());

    let llm = LlmMetrics {
        output_tokens: checked_sum(slices.iter().map(|p| p.llm.output_tokens), name, "output_tokens")?,
        empty_content: checked_sum(slices.iter().map(|p| p.llm.empty_content), name, "empty_content")?,
        histograms: add_maps(slices, name, |p| &p.llm.histograms, HistogramSummary::of, budget)?,
        tokens: add_maps(slices, name, |p| &p.llm.tokens, HistogramSummary::counts, budget)?,
        token_counting: first.llm.token_counting.clone(),
    };

    let timeline = merge_timelines(slices, budget)?;
    let elapsed_ms = slices
        .iter()
        .map(|p| p.elapsed_ms)
        .filter(|e| e.is_finite())
        .fold(0.0, f64::max);
    let seconds = elapsed_ms / 1000.0;
    let per_second = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let failed = checked_sum(
        slices.iter().map(|p| super::k6::failed_requests(p)),
        name,
        "failed requests",
    )?;
    let mut schedules: Vec<&str> = Vec::new();
    for p in slices {
        if !schedules.contains(&p.schedule.as_str()) {
            schedules.push(&p.schedule);
        }
    }
    Ok(PhaseReport {
        route: first.route.clone(),
        workload: first.workload.clone(),
        thresholds: first.thresholds.clone(),
        name: first.name.clone(),
        feature: first.feature.clone(),
        model: first.model.clone(),
        stream: first.stream,
        mode: first.mode.clone(),
        schedule: schedules.join("; "),
        shard: None,
        elapsed_ms,
        rps: per_second(transport.requests),
        error_rate: if transport.requests > 0 {
            failed as f64 / transport.requests as f64
        } else {
            0.0
        },
        output_tokens_per_s: per_second(llm.output_tokens),
        valid: slices.iter().all(|p| p.valid),
        transport,
        llm,
        timeline,
        sweep,
        capacity_rps,
        slo: slices.iter().find_map(|p| p.slo.clone()),
        capacity_lower_bound,
    })
}

/// Timelines merged by bucket start (to the millisecond): counts summed, histograms
/// added.
/// Adds every shard's histograms of one map, key by key.
fn add_maps(
    slices: &[&PhaseReport],
    name: &str,
    map: impl Fn(&PhaseReport) -> &BTreeMap<String, HistogramSummary>,
    summary: fn(&Histogram<u64>) -> HistogramSummary,
    budget: &mut DecodeBudget,
) -> Result<BTreeMap<String, HistogramSummary>, MergeError> {
    let keys: BTreeSet<&String> = slices.iter().flat_map(|p| map(p).keys()).collect();
    let mut out = BTreeMap::new();
    for key in keys {
        let parts = slices
            .iter()
            .enumerate()
            .filter_map(|(i, p)| map(p).get(key).map(|h| (i + 1, h)));
        if let Some(h) = add_histograms_as(parts, name, key, summary, budget)? {
            out.insert(key.clone(), h);
        }
    }
    Ok(out)
}

fn merge_timelines(slices: &[&PhaseReport], budget: &mut DecodeBudget) -> Result<Vec<TimelinePoint>, MergeError> {
    let name = slices[0].name.as_str();
    let mut buckets: BTreeMap<i64, Vec<(usize, &TimelinePoint)>> = BTreeMap::new();
    for (i, p) in slices.iter().enumerate() {
        for t in &p.timeline {
            buckets
                .entry((t.t_s * 1000.0).round() as i64)
                .or_default()
                .push((i + 1, t));
        }
    }
    buckets
        .into_values()
        .map(|points| {
            let t_s = points[0].1.t_s;
            let what = format!("timeline at {t_s} s");
            let latency = add_histograms(points.iter().map(|(i, t)| (*i, &t.latency)), name, &what, budget)?
                .unwrap_or_else(|| points[0].1.latency.clone());
            Ok(TimelinePoint {
                t_s,
                requests: checked_sum(points.iter().map(|(_, t)| t.requests), name, &what)?,
                errors: checked_sum(points.iter().map(|(_, t)| t.errors), name, &what)?,
                latency,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_shard;

    #[test]
    fn shard_labels() {
        assert_eq!(parse_shard("1/4"), Some((1, 4)));
        assert_eq!(parse_shard("4/4"), Some((4, 4)));
        assert_eq!(parse_shard("0/4"), None);
        assert_eq!(parse_shard("5/4"), None);
        assert_eq!(parse_shard("x/4"), None);
        assert_eq!(parse_shard("2"), None);
    }
}
