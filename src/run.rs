//! One conformance run: start the topology, send the plan's probes in order, collect
//! the evidence, judge every check, and build the [`RunReport`]. The report is
//! produced whatever happens to the gateway: unreachable, dying mid-run, or the run
//! being interrupted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::adapter::aigw::{AigwClient, FeatureRequest};
use crate::adapter::openai::OpenAiClient;
use crate::adapter::proxy::{Api, ProxyClient, ProxyRequest};
use crate::adapter::{ModelFields, Reply, TransportError};
use crate::check::DirectOutcome;
use crate::check::{self, ProbeOutcome};
use crate::export::ConfigFault;
use crate::feature::Endpoint;
use crate::gateway::Fault;
use crate::identifier::Provider;
use crate::plan::{DirectOp, Plan, Probe, Variant};
use crate::redact::Redactor;
use crate::report::{GatewayInfo, JournalInfo, LaunchInfo, RunReport, SCHEMA_VERSION, ScenarioInfo, Summary, Tool};
use crate::scenario::{GatewayKind, Scenario};
use crate::topology::{Topology, TopologyOptions};
use crate::wire::aws::sigv4::Credentials;
use crate::wire::endpoint::{normalize as normalize_endpoint, without_v1};

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
}

/// How probes reach the gateway: as the GitLab instance, or as an OpenAI client.
enum Sender {
    Aigw(AigwClient),
    Proxy(ProxyClient),
}

impl Sender {
    fn path(scenario: &Scenario, probe: &Probe) -> String {
        match scenario.gateway.kind {
            GatewayKind::Openai => api_of(probe).path().to_owned(),
            _ => crate::instance::path(scenario.instance.shapes, probe.feature),
        }
    }

    /// Sends a probe: the request as it went out, and the reply.
    async fn send(
        &self,
        probe: &Probe,
        fields: &ModelFields,
        cid: &str,
    ) -> (crate::adapter::Sent, Result<Reply, TransportError>) {
        match self {
            Sender::Aigw(c) => {
                let req = FeatureRequest {
                    feature: probe.feature,
                    model: fields,
                    stream: probe.stream,
                    auth: probe.auth,
                    correlation_id: cid,
                };
                (c.describe(&req), c.send(&req).await)
            }
            Sender::Proxy(c) => {
                let req = ProxyRequest {
                    alias: probe.alias.as_deref().unwrap_or_default(),
                    api: api_of(probe),
                    stream: probe.stream,
                    auth: probe.auth,
                    correlation_id: cid,
                };
                (c.describe(&req), c.send(&req).await)
            }
        }
    }
}

impl Sender {
    /// The same sender with connection reuse, for load phases.
    fn pooled(&self) -> reqwest::Result<Sender> {
        Ok(match self {
            Sender::Aigw(c) => Sender::Aigw(c.pooled()?),
            Sender::Proxy(c) => Sender::Proxy(c.pooled()?),
        })
    }
}

/// Code completions use the legacy completions API; everything else chats.
fn api_of(probe: &Probe) -> Api {
    if probe.feature.endpoint == Endpoint::CodeCompletions {
        Api::Completions
    } else {
        Api::Chat
    }
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
        diagnosis: Vec::new(),
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gateprobe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            path: scenario.path.display().to_string(),
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

    let run_id = run_id();
    if scenario.gateway.kind == GatewayKind::Direct {
        report.gateway.kind = "direct".into();
        report.gateway.url = opts.gateway_url.clone();
        let (direct, stop_reason) = run_direct(scenario, &plan, &topology, opts, cancel, &run_id).await;
        report.interrupted = cancel.is_cancelled();
        report.journal = JournalInfo {
            entries: topology.journal.next_seq(),
            dropped: topology.journal.dropped(),
        };
        let outcomes = not_run(&plan, scenario);
        finish(&mut report, scenario, &plan, (&outcomes, &direct), stop_reason, t0);
        return report.redacted(&redactor);
    }

    let client = match scenario.gateway.kind {
        GatewayKind::Openai => ProxyClient::new(
            &topology.gateway_url,
            scenario.gateway.token.clone(),
            scenario.gateway.timeout,
            &scenario.gateway.tls,
        )
        .map(Sender::Proxy),
        _ => AigwClient::new(
            &topology.gateway_url,
            scenario.gateway.token.clone(),
            scenario.gateway.headers.clone(),
            scenario.gateway.timeout,
            &scenario.gateway.tls,
            scenario.instance.shapes,
        )
        .map(Sender::Aigw),
    };
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
    let first_shard = opts.shard.is_none_or(|(i, _)| i == 1);
    let probes = if first_shard { &plan.probes[..] } else { &[] };
    for (i, probe) in probes.iter().enumerate() {
        if cancel.is_cancelled() {
            report.interrupted = true;
            stop_reason = Some("the run was interrupted");
            break;
        }
        if silent >= GIVE_UP_AFTER {
            report.aborted = Some(format!("the gateway stopped answering after {} requests", i - silent));
            stop_reason = Some("the gateway stopped answering");
            break;
        }
        let model = &scenario.models[probe.model];
        let endpoint = topology.endpoint(model);
        let endpoint = match probe.variant {
            Variant::AsConfigured => endpoint,
            Variant::TrailingSlash => format!("{}/", normalize_endpoint(&endpoint)),
            Variant::WithoutV1 => without_v1(&endpoint),
            Variant::Empty => String::new(),
        };
        let fields = ModelFields {
            family: model.family.clone(),
            endpoint,
            api_key: model.api_key.clone(),
            identifier: probe.identifier.clone().unwrap_or_else(|| model.identifier.to_string()),
        };
        let cid = format!("gp-{run_id}-{i}");
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
        let o = &mut outcomes[i];
        o.correlation_id = cid;
        o.fields = fields;
        o.sent = Some(sent);
        o.result = Some(result);
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
        run_load(scenario, opts, &topology, &client, &run_id, cancel, &mut report).await;
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

/// Runs the scenario's load phases after the checks and judges their thresholds into
/// check results (`threshold.<phase>.<metric>`).
async fn run_load(
    scenario: &Scenario,
    opts: &RunOptions,
    topology: &Topology,
    sender: &Sender,
    run_id: &str,
    cancel: &CancellationToken,
    report: &mut RunReport,
) {
    if scenario.load.is_empty() {
        return;
    }
    let sender = match sender.pooled() {
        Ok(s) => s,
        Err(e) => {
            report.aborted = Some(format!("the load client did not start: {e}"));
            return;
        }
    };
    let sender = &sender;
    topology.journal.set_light(true);
    for phase in &scenario.load {
        if cancel.is_cancelled() {
            report.interrupted = true;
            break;
        }
        let sweep = matches!(phase.mode, crate::scenario::load::LoadMode::Sweep { .. });
        if sweep && opts.shard.is_some_and(|(i, _)| i != 1) {
            continue;
        }
        let model = &scenario.models[phase.model];
        let target = match sender {
            Sender::Aigw(client) => crate::load::phase::LoadTarget::Aigw {
                client: client.clone(),
                fields: ModelFields {
                    family: model.family.clone(),
                    endpoint: topology.endpoint(model),
                    api_key: model.api_key.clone(),
                    identifier: model.identifier.to_string(),
                },
            },
            Sender::Proxy(client) => crate::load::phase::LoadTarget::Proxy {
                client: client.clone(),
                alias: match scenario.gateway.features_by {
                    crate::scenario::FeaturesBy::Feature => scenario.gateway.alias(phase.feature.name),
                    crate::scenario::FeaturesBy::Model => scenario.gateway.alias(&model.name),
                },
                api: if phase.feature.endpoint == Endpoint::CodeCompletions {
                    Api::Completions
                } else {
                    Api::Chat
                },
            },
        };
        let env = crate::load::phase::PhaseEnv {
            target,
            run_id: run_id.to_owned(),
            journal: model.backend.map(|_| std::sync::Arc::clone(&topology.journal)),
            shard: opts.shard,
        };
        match crate::load::phase::run_phase(&env, phase, &model.name, cancel).await {
            Ok((r, interrupted)) => {
                report.interrupted |= interrupted;
                // Thresholds gate whole runs: a shard's slice is judged after `merge`.
                if opts.shard.is_none() {
                    report
                        .checks
                        .extend(crate::check::threshold::checks(&r, &phase.thresholds));
                }
                report.load.push(r);
            }
            Err(e) => {
                report.aborted = Some(format!("load phase `{}` could not run: {e}", phase.name));
                break;
            }
        }
    }
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
            path: Sender::path(scenario, p),
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

/// Sends the direct probes (`kind: direct`) straight to the model endpoints.
async fn run_direct(
    scenario: &Scenario,
    plan: &Plan,
    topology: &Topology,
    opts: &RunOptions,
    cancel: &CancellationToken,
    run_id: &str,
) -> (Vec<DirectOutcome>, Option<&'static str>) {
    let mut outcomes = vec![DirectOutcome::default(); plan.direct.len()];
    let client = match OpenAiClient::new(scenario.gateway.timeout, &scenario.gateway.tls) {
        Ok(c) => c,
        Err(_) => return (outcomes, Some("the HTTP client did not start")),
    };
    let mut silent = 0;
    for (i, p) in plan.direct.iter().enumerate() {
        if cancel.is_cancelled() {
            return (outcomes, Some("the run was interrupted"));
        }
        if silent >= GIVE_UP_AFTER {
            return (outcomes, Some("the endpoint stopped answering"));
        }
        let model = &scenario.models[p.model];
        let endpoint = opts
            .gateway_url
            .clone()
            .unwrap_or_else(|| topology.direct_endpoint(model, scenario));
        let base = normalize_endpoint(&endpoint).to_owned();
        let key = model.api_key.as_deref();
        // Direct probes count from 900000 so their ids never meet the gateway probes'.
        let cid = format!("gp-{run_id}-{}", 900_000 + i);
        let m = model.identifier.model.as_str();
        let fut = async {
            match model.identifier.provider {
                Provider::Azure => {
                    let (key, dep) = match p.op {
                        DirectOp::WrongKey => (Some("gateprobe-wrong-key"), m),
                        DirectOp::UnknownModel => (key, "gateprobe-no-such-deployment"),
                        _ => (key, m),
                    };
                    let stream = matches!(p.op, DirectOp::Chat { stream: true });
                    client.azure_chat(&base, key, dep, stream, &cid).await
                }
                Provider::Bedrock => {
                    let aws = model.backend.and_then(|b| scenario.backends[b].aws.as_ref());
                    let creds = aws.map(|a| Credentials::new(a.access_key_id.clone(), a.secret_access_key.clone()));
                    let wrong = aws.map(|a| Credentials::new(a.access_key_id.clone(), "gateprobe-wrong-secret"));
                    let region = aws.map(|a| a.region.as_str()).unwrap_or("us-east-1");
                    let (signer, id) = match p.op {
                        DirectOp::WrongKey => (wrong.as_ref(), m),
                        DirectOp::UnknownModel => (creds.as_ref(), "gateprobe.no-such-model-v1:0"),
                        _ => (creds.as_ref(), m),
                    };
                    let stream = matches!(p.op, DirectOp::Chat { stream: true });
                    client
                        .bedrock_converse(&base, signer.map(|c| (c, region)), id, stream, &cid)
                        .await
                }
                Provider::CustomOpenai => match p.op {
                    DirectOp::Models => client.models(&base, key, &cid).await,
                    DirectOp::ModelsWithoutV1 => client.models(&without_v1(&endpoint), key, &cid).await,
                    DirectOp::Chat { stream } => client.chat(&base, key, m, stream, &cid).await,
                    DirectOp::WrongKey => client.chat(&base, Some("gateprobe-wrong-key"), m, false, &cid).await,
                    DirectOp::UnknownModel => client.chat(&base, key, "gateprobe-no-such-model", false, &cid).await,
                },
            }
        };
        let result = tokio::select! {
            r = fut => r,
            () = cancel.cancelled() => return (outcomes, Some("the run was interrupted")),
        };
        silent = if result
            .as_ref()
            .is_err_and(|e| matches!(e.kind.as_ref(), "connect" | "timeout"))
        {
            silent + 1
        } else {
            0
        };
        let o = &mut outcomes[i];
        o.hits = topology.journal.for_correlation(&cid);
        o.correlation_id = cid;
        o.endpoint = endpoint;
        o.result = Some(result);
    }
    (outcomes, None)
}
