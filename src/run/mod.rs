//! One conformance run: start the topology, send the plan's probes in order, collect
//! the evidence, judge every check, and build the [`RunReport`]. The report is
//! produced whatever happens to the gateway: unreachable, dying mid-run, or the run
//! being interrupted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::adapter::{Adapter, ModelFields};
use crate::check::DirectOutcome;
use crate::check::{self, ProbeOutcome};
use crate::export::ConfigFault;
use crate::gateway::Fault;
use crate::plan::{CorrelationIds, Plan};
use crate::redact::Redactor;
use crate::report::{GatewayInfo, JournalInfo, LaunchInfo, RunReport, SCHEMA_VERSION, ScenarioInfo, Summary, Tool};
use crate::scenario::{GatewayKind, Scenario};
use crate::topology::{Topology, TopologyOptions};

mod direct;
mod load;
mod preflight;

/// After this many probes in a row refused or timed out, the gateway is taken for gone
/// and the rest are reported as not run instead of waiting out every timeout. Replies
/// that break HTTP (resets, bad framing) fail fast and do not count.
const GIVE_UP_AFTER: usize = 3;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Test the gateway at this URL instead of the scenario's.
    pub gateway_url: Option<String>,
    /// Faults for the built-in gateway.
    pub faults: Vec<Fault>,
    /// `(index, total)`, 1-based: run this shard's slice of every load schedule (the
    /// conformance checks and sweeps run on shard 1 only).
    pub shard: Option<(u32, u32)>,
    /// The report directory: a launched gateway's config and output go there.
    pub work_dir: Option<std::path::PathBuf>,
    /// Deliberate mistakes in the gateway config gateprobe writes (`launch.config`).
    pub config_faults: Vec<ConfigFault>,
    /// Send the probes in the order this seed shuffles them into (a rule must hold
    /// whatever the order); `None` sends them in plan order. The CLI draws one when
    /// none is given and reports it, so `--seed` replays a run.
    pub seed: Option<u64>,
}

/// A seed for a run that names none.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Small enough to type back on a command line.
    (nanos as u64 ^ u64::from(std::process::id()).rotate_left(17)) % 1_000_000
}

/// A fresh run id (8 lowercase hex digits) for correlation ids.
pub fn run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:08x}", (mix ^ (mix >> 29)) as u32)
}

/// Runs the scenario's conformance checks; never fails: problems become errors in the
/// report.
pub async fn run(scenario: &Scenario, opts: &RunOptions, cancel: &CancellationToken) -> RunReport {
    run_recorded(scenario, opts, cancel).await.0
}

/// [`run`], with the transcript of its exchanges (none when the run could not start
/// or had no gateway to talk to).
pub async fn run_recorded(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> (RunReport, Option<crate::transcript::Transcript>) {
    let mut transcript = None;
    let report = run_inner(scenario, opts, cancel, &mut transcript).await;
    (report, transcript)
}

async fn run_inner(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: &CancellationToken,
    transcript: &mut Option<crate::transcript::Transcript>,
) -> RunReport {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let plan = crate::check::compile(scenario);
    let mut secrets = scenario.secrets.clone();
    if let Some(u) = &opts.gateway_url {
        let in_url = crate::redact::url_secrets("--gateway-url", u);
        crate::redact::register(&in_url);
        secrets.extend(in_url);
    }
    let redactor = Redactor::new(secrets);
    let mut report = RunReport {
        shard: opts.shard.map(|(i, n)| format!("{i}/{n}")),
        seed: None,
        diagnosis: Vec::new(),
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gateprobe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            path: scenario.path.display().to_string(),
            digest: Some(scenario.digest.clone()),
        },
        gateway: GatewayInfo {
            kind: match (scenario.gateway.kind, &opts.gateway_url) {
                (GatewayKind::Builtin, None) => "builtin".into(),
                (GatewayKind::Openai, None) if scenario.gateway.url.is_none() && scenario.gateway.launch.is_none() => {
                    "builtin-openai".into()
                }
                (GatewayKind::Openai, _) => "openai".into(),
                _ => "aigw".into(),
            },
            url: None,
            faults: opts.faults.iter().map(|f| f.name().to_owned()).collect(),
            profile: scenario.gateway.profile.name.clone(),
            profile_source: scenario.gateway.profile.source.clone(),
            launched: None,
            tls_unverified: !scenario.gateway.tls.verify,
        },
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        duration_ms: 0.0,
        interrupted: false,
        aborted: None,
        summary: Summary::default(),
        checks: Vec::new(),
        journal: JournalInfo::default(),
        load: Vec::new(),
    };

    if let Some(why) = preflight::before_start(scenario, opts) {
        return aborted(report, scenario, &plan, why, "the setup is wrong", t0, &redactor);
    }
    let topts = TopologyOptions {
        gateway_url: opts.gateway_url.clone(),
        faults: opts.faults.clone(),
        work_dir: opts.work_dir.clone(),
        config_faults: opts.config_faults.clone(),
        redactor: redactor.clone(),
    };
    let mut topology = match Topology::start(scenario, &topts) {
        Ok(t) => t,
        Err(e) => {
            return aborted(
                report,
                scenario,
                &plan,
                e.to_string(),
                "the local servers did not start",
                t0,
                &redactor,
            );
        }
    };
    report.gateway.url = Some(topology.gateway_url.clone());
    if topology.launched.is_some() {
        let timeout = scenario
            .gateway
            .launch
            .as_ref()
            .map_or(Duration::from_secs(120), |x| x.timeout);
        let mut port_retries = 0;
        let ready: Result<Duration, String> = loop {
            let Some(l) = topology.launched.as_mut() else {
                break Err(crate::launch::LaunchError::Interrupted.to_string());
            };
            let ready = l.process.wait_ready(&l.ready, timeout, cancel).await;
            if matches!(ready, Err(crate::launch::LaunchError::Exited { .. }))
                && port_retries < LAUNCH_PORT_RETRIES
                && l.process.lost_its_port()
            {
                // Another process took the port between gateprobe's pick and the
                // gateway's bind: start it again on another.
                port_retries += 1;
                eprintln!("gateprobe: the launched gateway's port was taken; starting it again on another");
                if let Err(e) = topology.relaunch(scenario, &topts) {
                    break Err(e.to_string());
                }
                report.gateway.url = Some(topology.gateway_url.clone());
                continue;
            }
            break ready.map_err(|e| e.to_string());
        };
        let ready_ms = ready.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0);
        if let Err(e) = ready {
            report.interrupted = cancel.is_cancelled();
            if let Some(l) = topology.launched.as_mut() {
                l.process.stop();
            }
            report.gateway.launched = Some(launch_info(&topology, None, port_retries));
            drop(topology);
            return aborted(report, scenario, &plan, e, "the gateway did not start", t0, &redactor);
        }
        report.gateway.launched = Some(launch_info(&topology, ready_ms, port_retries));
    }

    let ids = std::sync::Arc::new(CorrelationIds::new(&run_id()));
    if scenario.gateway.kind == GatewayKind::Direct {
        report.gateway.kind = "direct".into();
        report.gateway.url = opts.gateway_url.clone();
        let (direct, stop_reason) = direct::run(scenario, &plan, &topology, opts, cancel, &ids).await;
        report.interrupted = cancel.is_cancelled();
        report.journal = JournalInfo {
            entries: topology.journal.next_seq(),
            dropped: topology.journal.dropped(),
        };
        let outcomes = not_run(&plan, scenario);
        finish(&mut report, scenario, &plan, (&outcomes, &direct), stop_reason, t0);
        if !report.interrupted && stop_reason.is_none() && !scenario.load.is_empty() {
            load::run(scenario, opts, &topology, None, &ids, cancel, &mut report).await;
            report.summary = Summary::of(&report.checks);
            report.duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        }
        return report.redacted(&redactor);
    }

    if let Some(why) = preflight::unreachable(scenario, opts, &topology.gateway_url).await {
        drop(topology);
        return aborted(
            report,
            scenario,
            &plan,
            why,
            "the gateway is unreachable",
            t0,
            &redactor,
        );
    }
    if let Some(why) = preflight::unknowable_backend(scenario, opts, &plan) {
        drop(topology);
        return aborted(report, scenario, &plan, why, "the setup is wrong", t0, &redactor);
    }
    let client = Adapter::new(scenario, &topology.gateway_url);
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot build the HTTP client: {e}");
            return aborted(
                report,
                scenario,
                &plan,
                why,
                "the HTTP client did not start",
                t0,
                &redactor,
            );
        }
    };

    let mut outcomes = not_run(&plan, scenario);
    let mut silent = 0;
    let mut stop_reason = None;
    // Whether a request with the scenario's credentials got an answer yet.
    let mut token_checked = false;
    let first_shard = opts.shard.is_none_or(|(i, _)| i == 1);
    let mut order: Vec<usize> = if first_shard {
        (0..plan.probes.len()).collect()
    } else {
        Vec::new()
    };
    report.seed = opts.seed;
    if let Some(seed) = opts.seed {
        crate::rng::Rng::new(seed).shuffle(&mut order);
    }
    for (sent_before, &i) in order.iter().enumerate() {
        let probe = &plan.probes[i];
        if cancel.is_cancelled() {
            report.interrupted = true;
            stop_reason = Some("the run was interrupted");
            break;
        }
        if silent >= GIVE_UP_AFTER {
            report.aborted = Some(format!(
                "the gateway stopped answering after {} requests",
                sent_before - silent
            ));
            stop_reason = Some("the gateway stopped answering");
            break;
        }
        let model = &scenario.models[probe.model];
        let endpoint = probe.variant.apply(&topology.endpoint(model));
        let fields = ModelFields {
            family: model.family.clone(),
            endpoint,
            api_key: model.api_key.clone(),
            identifier: probe.identifier.clone().unwrap_or_else(|| model.identifier.to_string()),
        };
        let cid = ids.next();
        let (sent, result) = tokio::select! {
            r = client.send(probe, &fields, &cid) => r,
            () = cancel.cancelled() => {
                report.interrupted = true;
                stop_reason = Some("the run was interrupted");
                break;
            }
        };
        silent = if result
            .as_ref()
            .is_err_and(|e| matches!(e.kind.as_ref(), "connect" | "timeout"))
        {
            silent + 1
        } else {
            0
        };
        // A refusal that reached no backend is the gateway's own: of the client token.
        let refused = match &result {
            Ok(r) if !token_checked && topology.journal.for_correlation(&cid).is_empty() => {
                preflight::token_refused(scenario, probe.auth, r)
            }
            _ => None,
        };
        token_checked |= probe.auth == crate::plan::ClientAuth::Valid && result.is_ok();
        let o = &mut outcomes[i];
        o.correlation_id = cid;
        o.fields = fields;
        o.sent = Some(sent);
        o.result = Some(result);
        if let Some(why) = refused {
            // Not the gateway breaking a rule: the reply is evidence of nothing.
            outcomes[i].result = None;
            report.aborted = Some(why);
            stop_reason = Some("the gateway refuses the client token");
            break;
        }
    }
    // Backend requests are made before the gateway answers, so the journal is complete
    // for every probe that got a reply; give late ones from failed probes a moment.
    if outcomes.iter().any(|o| matches!(o.result, Some(Err(_)))) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for o in &mut outcomes {
        if o.result.is_some() {
            o.hits = topology
                .journal
                .for_correlation(&o.correlation_id)
                .into_iter()
                .filter(|e| e.method == "POST")
                .collect();
        }
    }
    report.journal = JournalInfo {
        entries: topology.journal.next_seq(),
        dropped: topology.journal.dropped(),
    };
    let direct = vec![DirectOutcome::default(); plan.direct.len()];
    let plan = if first_shard { plan } else { Plan::default() };
    finish(&mut report, scenario, &plan, (&outcomes, &direct), stop_reason, t0);
    *transcript = Some(crate::transcript::record(
        scenario,
        &plan,
        &outcomes,
        &report.checks,
        &report.gateway,
        &redactor,
    ));
    if !report.interrupted && report.aborted.is_none() && !scenario.load.is_empty() {
        load::run(scenario, opts, &topology, Some(&client), &ids, cancel, &mut report).await;
        report.summary = Summary::of(&report.checks);
        report.duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
    }
    if let Some(l) = topology.launched.as_mut() {
        l.process.stop();
        let (ready_ms, port_retries) = report
            .gateway
            .launched
            .as_ref()
            .map_or((None, 0), |x| (x.ready_ms, x.port_retries));
        report.gateway.launched = Some(launch_info(&topology, ready_ms, port_retries));
    }
    drop(topology);
    report.redacted(&redactor)
}

/// How often a launched gateway that lost its port to another process is started
/// again on another.
const LAUNCH_PORT_RETRIES: u32 = 2;

/// What the report says about a launched gateway.
fn launch_info(topology: &Topology, ready_ms: Option<f64>, port_retries: u32) -> LaunchInfo {
    let l = topology.launched.as_ref();
    let rel = |p: &std::path::Path| l.map(|l| crate::launch::relative(p, &l.dir)).unwrap_or_default();
    LaunchInfo {
        command: l.map(|l| l.command.clone()).unwrap_or_default(),
        pid: l.map(|l| l.process.pid()),
        ready_ms,
        exit: l.and_then(|l| l.process.exit().map(str::to_owned)),
        logs: l
            .map(|l| l.earlier_logs.iter().chain(&l.process.logs).map(|p| rel(p)).collect())
            .unwrap_or_default(),
        config: l.and_then(|l| l.config.as_deref().map(rel)),
        port_retries,
    }
}

/// The report of a run that could not start: every check an error saying why.
fn aborted(
    mut report: RunReport,
    scenario: &Scenario,
    plan: &Plan,
    why: String,
    not_run_reason: &str,
    t0: Instant,
    redactor: &Redactor,
) -> RunReport {
    report.aborted = Some(why);
    let outcomes = not_run(plan, scenario);
    let direct = vec![DirectOutcome::default(); plan.direct.len()];
    finish(
        &mut report,
        scenario,
        plan,
        (&outcomes, &direct),
        Some(not_run_reason),
        t0,
    );
    report.redacted(redactor)
}

fn not_run(plan: &Plan, scenario: &Scenario) -> Vec<ProbeOutcome> {
    plan.probes
        .iter()
        .map(|p| ProbeOutcome {
            correlation_id: String::new(),
            path: Adapter::path_of(scenario, p),
            fields: ModelFields {
                family: scenario.models[p.model].family.clone(),
                endpoint: String::new(),
                api_key: None,
                identifier: String::new(),
            },
            sent: None,
            result: None,
            hits: Vec::new(),
        })
        .collect()
}

fn finish(
    report: &mut RunReport,
    scenario: &Scenario,
    plan: &Plan,
    (outcomes, direct): (&[ProbeOutcome], &[DirectOutcome]),
    not_run: Option<&str>,
    t0: Instant,
) {
    let cx = check::Ctx {
        scenario,
        probes: &plan.probes,
        outcomes,
        profile: &scenario.gateway.profile,
        not_run,
        plan_direct: &plan.direct,
        direct,
    };
    (report.checks, report.diagnosis) = check::judge_all(plan, &cx);
    report.summary = Summary::of(&report.checks);
    report.duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
}
