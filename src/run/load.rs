//! The load phases of a run, after its checks: each phase's requests through the
//! gateway front (connections reused) or straight to the model endpoint (`kind:
//! direct`, and the direct half of `compare_direct`), its thresholds judged into check
//! results.

use tokio_util::sync::CancellationToken;

use super::RunOptions;
use crate::adapter::model::{ModelClient, ModelTarget};
use crate::adapter::{Adapter, ClientAuth, ModelFields};
use crate::load::route::Route;
use crate::plan::{Probe, Variant};
use crate::report::RunReport;
use crate::scenario::{GatewayKind, ModelConfig, Scenario};
use crate::topology::Topology;
use crate::wire::aws::sigv4::Credentials;

/// Runs the scenario's load phases after the checks and judges their thresholds into
/// check results (`threshold.<phase>.<metric>`). `adapter` is the gateway's client
/// (`None` for `kind: direct`).
pub(super) async fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    topology: &Topology,
    adapter: Option<&Adapter>,
    ids: &std::sync::Arc<crate::plan::CorrelationIds>,
    cancel: &CancellationToken,
    report: &mut RunReport,
) {
    if scenario.load.is_empty() {
        return;
    }
    let clients = match (
        adapter.map(Adapter::pooled).transpose(),
        ModelClient::new(scenario.gateway.timeout, &scenario.gateway.tls),
    ) {
        (Ok(a), Ok(m)) => (a, m),
        (Err(e), _) | (_, Err(e)) => {
            report.aborted = Some(format!("the load client did not start: {e}"));
            return;
        }
    };
    let (adapter, model_client) = clients;
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
        let direct = Route::Direct {
            client: model_client.clone(),
            target: target(scenario, opts, topology, model),
            feature: phase.feature,
            stream: phase.stream,
            without_system: !matches!(scenario.gateway.kind, GatewayKind::Openai | GatewayKind::Direct),
        };
        let (route, paired) = match &adapter {
            None => (direct, None),
            Some(adapter) => {
                let gateway = gateway_route(scenario, topology, adapter, phase);
                (gateway, phase.compare_direct.then_some(direct))
            }
        };
        let env = crate::load::phase::PhaseEnv {
            route,
            paired,
            ids: std::sync::Arc::clone(ids),
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

/// A phase's requests through the gateway front.
fn gateway_route(
    scenario: &Scenario,
    topology: &Topology,
    adapter: &Adapter,
    phase: &crate::scenario::load::LoadPhase,
) -> Route {
    let model = &scenario.models[phase.model];
    let alias = match scenario.gateway.features_by {
        crate::scenario::FeaturesBy::Feature => scenario.gateway.alias(phase.feature.name),
        crate::scenario::FeaturesBy::Model => scenario.gateway.alias(&model.name),
    };
    let probe = Probe {
        feature: phase.feature,
        model: phase.model,
        variant: Variant::AsConfigured,
        auth: ClientAuth::Valid,
        stream: phase.stream,
        identifier: None,
        alias: (scenario.gateway.kind == GatewayKind::Openai).then_some(alias),
    };
    let fields = ModelFields {
        family: model.family.clone(),
        endpoint: topology.endpoint(model),
        api_key: model.api_key.clone(),
        identifier: model.identifier.to_string(),
    };
    Route::Gateway {
        adapter: adapter.clone(),
        probe,
        fields,
    }
}

/// A model's own endpoint as the gateway calls it: `--gateway-url` for `kind: direct`,
/// else the configured endpoint (or, for Bedrock, the runtime backend), with the
/// model's key or its backend's AWS credentials.
fn target(scenario: &Scenario, opts: &RunOptions, topology: &Topology, model: &ModelConfig) -> ModelTarget {
    let endpoint = match (&opts.gateway_url, scenario.gateway.kind) {
        (Some(u), GatewayKind::Direct) => u.clone(),
        _ => topology.direct_endpoint(model, scenario),
    };
    let aws = model.backend.and_then(|b| scenario.backends[b].aws.as_ref()).map(|a| {
        (
            Credentials::new(a.access_key_id.clone(), a.secret_access_key.clone()),
            a.region.clone(),
        )
    });
    ModelTarget {
        provider: model.identifier.provider,
        base: crate::wire::endpoint::normalize(&endpoint).to_owned(),
        key: model.api_key.clone(),
        aws,
        model: model.identifier.model.clone(),
        family: model.family.clone(),
    }
}
