//! The load phases of a run, after its checks: each phase's requests through the
//! gateway front (connections reused), its thresholds judged into check results.

use tokio_util::sync::CancellationToken;

use super::RunOptions;
use crate::adapter::{Adapter, ClientAuth, ModelFields};
use crate::plan::{Probe, Variant};
use crate::report::RunReport;
use crate::scenario::Scenario;
use crate::topology::Topology;

/// Runs the scenario's load phases after the checks and judges their thresholds into
/// check results (`threshold.<phase>.<metric>`).
pub(super) async fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    topology: &Topology,
    adapter: &Adapter,
    ids: &std::sync::Arc<crate::plan::CorrelationIds>,
    cancel: &CancellationToken,
    report: &mut RunReport,
) {
    if scenario.load.is_empty() {
        return;
    }
    let adapter = match adapter.pooled() {
        Ok(a) => a,
        Err(e) => {
            report.aborted = Some(format!("the load client did not start: {e}"));
            return;
        }
    };
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
            alias: (scenario.gateway.kind == crate::scenario::GatewayKind::Openai).then_some(alias),
        };
        let fields = ModelFields {
            family: model.family.clone(),
            endpoint: topology.endpoint(model),
            api_key: model.api_key.clone(),
            identifier: model.identifier.to_string(),
        };
        let env = crate::load::phase::PhaseEnv {
            adapter: adapter.clone(),
            probe,
            fields,
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
