//! Starting what a run talks to: the scenario's mock backends and, for the `builtin`
//! kind, the reference gateway, all on one server host with threads of their own.

use std::sync::Arc;
use std::time::Instant;

use crate::aws::sigv4::Credentials;
use crate::gateway::bedrock::AwsSettings;
use crate::gateway::{self, Fault, GatewaySettings};
use crate::mock::{self, RunningMock, journal::Journal};
use crate::scenario::{GatewayKind, ModelConfig, Scenario};
use crate::server::{Server, ServerHost};

/// Journal capacity for conformance runs.
pub const JOURNAL_CAPACITY: usize = 100_000;

/// Why the topology could not start.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Binding or runtime failure.
    #[error("cannot start the local servers: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP client construction failure.
    #[error("cannot build the gateway's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// `aigw` without a URL.
    #[error("gateway kind `aigw` needs a URL: set `gateway.url` in the scenario or pass --gateway-url")]
    NoGatewayUrl,
}

/// Running servers of a run. Dropping it stops them.
#[derive(Debug)]
pub struct Topology {
    /// Mock backends, in scenario order.
    pub mocks: Vec<RunningMock>,
    /// The built-in gateway, when it runs.
    pub gateway: Option<Server>,
    /// Base URL of the gateway under test.
    pub gateway_url: String,
    /// What the mocks received.
    pub journal: Arc<Journal>,
    host: ServerHost,
}

impl Topology {
    /// Starts mocks and, unless `gateway_url` points elsewhere, the built-in gateway.
    pub fn start(scenario: &Scenario, gateway_url: Option<&str>, faults: &[Fault]) -> Result<Topology, TopologyError> {
        let host = ServerHost::new(2)?;
        let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
        let mocks = mock::start_all(&host, &scenario.backends, &journal)?;
        let external = gateway_url.map(str::to_owned).or_else(|| match scenario.gateway.kind {
            GatewayKind::Aigw => scenario.gateway.url.clone(),
            GatewayKind::Builtin | GatewayKind::Direct => None,
        });
        let (gateway, gateway_url) = match external {
            _ if scenario.gateway.kind == GatewayKind::Direct => (None, String::new()),
            Some(u) => (None, u),
            None if scenario.gateway.kind == GatewayKind::Aigw => return Err(TopologyError::NoGatewayUrl),
            None => {
                // The gateway's AWS_* settings point at our Bedrock mock, as an admin
                // would configure them.
                let aws = scenario.backends.iter().zip(&mocks).find_map(|(b, m)| {
                    let a = b.aws.as_ref()?;
                    Some(AwsSettings {
                        runtime_endpoint: m.server.url(),
                        region: a.region.clone(),
                        credentials: Credentials::new(a.access_key_id.clone(), a.secret_access_key.clone()),
                    })
                });
                let settings = GatewaySettings {
                    aws,
                    auth: scenario.gateway.builtin_auth,
                    token: scenario.gateway.token.clone(),
                    faults: faults.to_vec(),
                    upstream_timeout: scenario.gateway.timeout,
                };
                let server = host.serve(([127, 0, 0, 1], 0).into(), gateway::router(settings)?)?;
                let url = server.url();
                (Some(server), url)
            }
        };
        Ok(Topology {
            mocks,
            gateway,
            gateway_url,
            journal,
            host,
        })
    }

    /// A backend's base URL.
    pub fn backend_url(&self, name: &str) -> Option<String> {
        self.mocks.iter().find(|m| m.name == name).map(|m| m.server.url())
    }

    /// A model's endpoint with backend addresses filled in.
    pub fn endpoint(&self, model: &ModelConfig) -> String {
        model
            .endpoint
            .as_ref()
            .map(|t| t.render(|n| self.backend_url(n)))
            .unwrap_or_default()
    }

    /// Where a model is reached directly: its endpoint, or for Bedrock models (which
    /// have none) their runtime backend.
    pub fn direct_endpoint(&self, model: &ModelConfig, scenario: &Scenario) -> String {
        match (&model.endpoint, model.backend) {
            (None, Some(b)) => self.backend_url(&scenario.backends[b].name).unwrap_or_default(),
            _ => self.endpoint(model),
        }
    }

    /// The server host (for spawning server-side work).
    pub fn host(&self) -> &ServerHost {
        &self.host
    }
}
