//! `kind: direct`: the vendor checks' requests, straight to each model endpoint.

use tokio_util::sync::CancellationToken;

use super::{GIVE_UP_AFTER, RunOptions};
use crate::adapter::openai::{OpenAiClient, Post};
use crate::check::DirectOutcome;
use crate::identifier::Provider;
use crate::plan::{DirectOp, Plan};
use crate::scenario::Scenario;
use crate::topology::Topology;
use crate::wire::aws::sigv4::Credentials;
use crate::wire::endpoint::{normalize as normalize_endpoint, without_v1};

/// Sends the direct probes (`kind: direct`) straight to the model endpoints.
pub(super) async fn run(
    scenario: &Scenario,
    plan: &Plan,
    topology: &Topology,
    opts: &RunOptions,
    cancel: &CancellationToken,
    ids: &crate::plan::CorrelationIds,
) -> (Vec<DirectOutcome>, Option<&'static str>) {
    let mut outcomes = vec![DirectOutcome::default(); plan.direct.len()];
    let client = match OpenAiClient::new(scenario.gateway.timeout, &topology.client_tls(scenario)) {
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
        let cid = ids.next();
        let m = model.identifier.model.as_str();
        let fut = async {
            if let DirectOp::Ready(op) = p.op {
                // Readiness requests: OpenAI-compatible servers and Azure deployments.
                let deployment = (model.identifier.provider == Provider::Azure).then_some(m);
                let r = crate::check::readiness::request(scenario, op, m, &cid);
                let post = Post {
                    path: r.path,
                    key,
                    deployment,
                    body: &r.body,
                    head: r.head,
                };
                return client.post(&base, post, &cid).await;
            }
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
                    let creds = aws.map(|a| a.credentials());
                    let wrong = aws.map(|a| Credentials {
                        secret_access_key: "gateprobe-wrong-secret".into(),
                        ..a.credentials()
                    });
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
                    DirectOp::Ready(_) => unreachable!("sent above"),
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
