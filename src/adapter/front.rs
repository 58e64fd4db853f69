//! [`Adapter`]: the one place the gateway front is dispatched on. A probe (a feature
//! for a model, with credentials and a stream flag) goes out as the GitLab instance's
//! request to the AI gateway API, or as an OpenAI client's request to a proxy alias;
//! the run, the load phases and the transcripts all go through here.

use std::time::Duration;

use super::aigw::{AigwClient, FeatureRequest};
use super::proxy::{Api, ProxyClient, ProxyRequest};
use super::timed::Timed;
use super::{ModelFields, Reply, Sent, TransportError};
use crate::feature::Endpoint;
use crate::plan::Probe;
use crate::scenario::{GatewayKind, Scenario};
use crate::wire::prompt::{Generation, Prompt};

/// A client of the gateway front under test.
#[derive(Clone, Debug)]
pub enum Adapter {
    /// The AI gateway API, as the GitLab instance of the scenario's version.
    Aigw(AigwClient),
    /// An OpenAI-compatible proxy, as an OpenAI client of its aliases.
    Proxy(ProxyClient),
}

/// Code completions use the legacy completions API; everything else chats.
pub fn api_of(probe: &Probe) -> Api {
    if probe.feature.endpoint == Endpoint::CodeCompletions {
        Api::Completions
    } else {
        Api::Chat
    }
}

impl Adapter {
    /// The client of the scenario's gateway at `url` (one connection per request; see
    /// [`Adapter::pooled`]).
    ///
    /// Every reply is searched for the scenario's upstream credentials (model and
    /// backend keys, AWS secrets), for `auth.key_not_leaked`.
    pub fn new(s: &Scenario, url: &str) -> reqwest::Result<Adapter> {
        let g = &s.gateway;
        let watch = crate::redact::Redactor::new(s.upstream_credentials());
        Ok(match g.kind {
            GatewayKind::Openai => {
                Adapter::Proxy(ProxyClient::new(url, g.token.clone(), g.timeout, &g.tls)?.watching(watch))
            }
            _ => Adapter::Aigw(
                AigwClient::new(
                    url,
                    g.token.clone(),
                    g.headers.clone(),
                    g.timeout,
                    &g.tls,
                    s.instance.shapes,
                )?
                .watching(watch),
            ),
        })
    }

    /// The same client with connection reuse, for load phases.
    pub fn pooled(&self) -> reqwest::Result<Adapter> {
        Ok(match self {
            Adapter::Aigw(c) => Adapter::Aigw(c.pooled()?),
            Adapter::Proxy(c) => Adapter::Proxy(c.pooled()?),
        })
    }

    /// The path a probe goes to, without a client (for reports of runs that never
    /// started).
    pub fn path_of(s: &Scenario, probe: &Probe) -> String {
        match s.gateway.kind {
            GatewayKind::Openai => api_of(probe).path().to_owned(),
            _ => crate::instance::path(s.instance.shapes, probe.feature),
        }
    }

    /// Sends a probe: the request as it went out, and the reply.
    pub async fn send(&self, probe: &Probe, fields: &ModelFields, cid: &str) -> (Sent, Result<Reply, TransportError>) {
        match self {
            Adapter::Aigw(c) => {
                let req = feature_request(probe, fields, cid);
                (c.describe(&req), c.send(&req).await)
            }
            Adapter::Proxy(c) => {
                let req = proxy_request(probe, cid);
                (c.describe(&req), c.send(&req).await)
            }
        }
    }

    /// Sends a probe as a load run does: only when its first byte and each token event
    /// arrived are kept; `gap` receives each inter-token gap. With `prompt`, the
    /// request carries a workload's prompt (and, where the client sets it, its output
    /// length) instead of the canned one.
    pub async fn send_timed(
        &self,
        probe: &Probe,
        fields: &ModelFields,
        cid: &str,
        prompt: Option<(&Prompt, Generation)>,
        gap: &mut impl FnMut(Duration),
    ) -> Timed {
        match self {
            Adapter::Aigw(c) => {
                c.send_timed(&feature_request(probe, fields, cid), prompt.map(|(p, _)| p), gap)
                    .await
            }
            Adapter::Proxy(c) => {
                let mut req = proxy_request(probe, cid);
                req.prompt = prompt.map(|(p, g)| (p, g, fields.family.as_str()));
                c.send_timed(&req, gap).await
            }
        }
    }
}

fn feature_request<'a>(probe: &'a Probe, fields: &'a ModelFields, cid: &'a str) -> FeatureRequest<'a> {
    FeatureRequest {
        feature: probe.feature,
        model: fields,
        stream: probe.stream,
        auth: probe.auth,
        correlation_id: cid,
    }
}

fn proxy_request<'a>(probe: &'a Probe, cid: &'a str) -> ProxyRequest<'a> {
    ProxyRequest {
        alias: probe.alias.as_deref().unwrap_or_default(),
        api: api_of(probe),
        stream: probe.stream,
        auth: probe.auth,
        correlation_id: cid,
        prompt: None,
    }
}
