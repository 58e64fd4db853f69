//! Starting what a run talks to: the scenario's mock backends and then the gateway:
//! the reference gateway for `builtin` (and `openai` without a URL), on one server
//! host with threads of their own, or a launched gateway process whose config gateprobe
//! writes first when the scenario asks for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::export::{self, ConfigFault, ExportOptions};
use crate::launch::{self, LaunchError, Launched};
use crate::redact::Redactor;

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
    /// The gateway process could not be launched.
    #[error("{0}")]
    Launch(#[from] LaunchError),
    /// The gateway's config could not be written.
    #[error("cannot write the gateway's config: {0}")]
    Config(String),
}

/// How to start a topology.
#[derive(Clone, Debug, Default)]
pub struct TopologyOptions {
    /// Test the gateway at this URL instead of the scenario's (no launch).
    pub gateway_url: Option<String>,
    /// Faults for the built-in gateway.
    pub faults: Vec<Fault>,
    /// Where a launched gateway's config and output go.
    pub work_dir: Option<PathBuf>,
    /// Deliberate mistakes in a written gateway config.
    pub config_faults: Vec<ConfigFault>,
    /// Redacts the launched gateway's output.
    pub redactor: Redactor,
}

/// A launched gateway and what the report says about it.
#[derive(Debug)]
pub struct LaunchedGateway {
    /// The process guard (drop stops it).
    pub process: Launched,
    /// The rendered command, for the report (redacted later).
    pub command: Vec<String>,
    /// The ready URL.
    pub ready: String,
    /// The config file written for it.
    pub config: Option<PathBuf>,
    /// The report directory it writes into.
    pub dir: PathBuf,
    /// The output of earlier starts that lost their port, renamed aside.
    pub earlier_logs: Vec<PathBuf>,
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
    /// The gateway process gateprobe launched, if it did.
    pub launched: Option<LaunchedGateway>,
    host: ServerHost,
}

impl Topology {
    /// Starts mocks and then the gateway: an external URL (`--gateway-url` or the
    /// scenario's), a launched process, or the built-in reference gateway.
    pub fn start(scenario: &Scenario, opts: &TopologyOptions) -> Result<Topology, TopologyError> {
        let host = ServerHost::new(2)?;
        let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
        // The mock PKI's files go with the report, where a gateway can be pointed at them.
        let pki_dir = opts.work_dir.as_ref().map(|d| d.join("mock-tls"));
        let mocks = mock::start_all_in(&host, &scenario.backends, &journal, pki_dir.as_deref())?;
        let kind = scenario.gateway.kind;
        let external = opts.gateway_url.clone().or_else(|| match kind {
            GatewayKind::Aigw | GatewayKind::Openai => scenario.gateway.url.clone(),
            GatewayKind::Builtin | GatewayKind::Direct => None,
        });
        let mut topology = Topology {
            mocks,
            gateway: None,
            gateway_url: String::new(),
            journal,
            launched: None,
            host,
        };
        match external {
            _ if kind == GatewayKind::Direct => {}
            Some(u) => topology.gateway_url = u,
            None if scenario.gateway.launch.is_some() => topology.launch(scenario, opts)?,
            None if kind == GatewayKind::Aigw => return Err(TopologyError::NoGatewayUrl),
            None => {
                // The gateway's AWS_* settings point at our Bedrock mock, as an admin
                // would configure them.
                let aws = scenario.backends.iter().zip(&topology.mocks).find_map(|(b, m)| {
                    let a = b.aws.as_ref()?;
                    Some(AwsSettings {
                        runtime_endpoint: m.server.url(),
                        region: a.region.clone(),
                        credentials: a.credentials(),
                    })
                });
                let features = gateway::FeatureMap::of(scenario, &|n| topology.backend_url(n));
                let settings = GatewaySettings {
                    upstream_tls: topology.client_tls(scenario),
                    aws,
                    auth: scenario.gateway.builtin_auth,
                    token: scenario.gateway.token.clone(),
                    faults: opts.faults.to_vec(),
                    upstream_timeout: scenario.gateway.timeout,
                    // The run's own backends, and no other host.
                    upstreams: Some(features.origins()),
                    features,
                };
                let server = topology
                    .host
                    .serve(([127, 0, 0, 1], 0).into(), gateway::router(settings)?)?;
                topology.gateway_url = server.url();
                topology.gateway = Some(server);
            }
        }
        Ok(topology)
    }

    /// Starts the launched gateway again on another free port (its config rewritten),
    /// after it lost the port it was given.
    /// The output of the earlier start is kept as `gateway.stdout.N.log`, ...
    pub fn relaunch(&mut self, scenario: &Scenario, opts: &TopologyOptions) -> Result<(), TopologyError> {
        let mut earlier = Vec::new();
        if let Some(mut old) = self.launched.take() {
            old.process.stop();
            earlier = std::mem::take(&mut old.earlier_logs);
            let attempt = earlier.len() / old.process.logs.len().max(1) + 1;
            for log in &old.process.logs {
                let aside = log.with_extension(format!("{attempt}.log"));
                if std::fs::rename(log, &aside).is_ok() {
                    earlier.push(aside);
                }
            }
        }
        self.launch(scenario, opts)?;
        if let Some(l) = self.launched.as_mut() {
            l.earlier_logs = earlier;
        }
        Ok(())
    }

    /// Writes the gateway's config (if the scenario asks for one) and starts it.
    fn launch(&mut self, scenario: &Scenario, opts: &TopologyOptions) -> Result<(), TopologyError> {
        let Some(l) = &scenario.gateway.launch else {
            return Ok(());
        };
        let dir = match &opts.work_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("gateprobe-launch-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).map_err(LaunchError::Io)?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let port = launch::free_port()?.to_string();
        // Every backend's address, as `gateprobe mock` exports it: a gateway that only
        // calls its own backends (`gateprobe gateway`) learns them here.
        let mut env: Vec<(String, String)> = scenario
            .backends
            .iter()
            .filter_map(|b| Some((crate::mock::url_var(&b.name), self.backend_url(&b.name)?)))
            .collect();
        let mut config = None;
        if l.config.is_some() {
            let url = |n: &str| self.backend_url(n);
            let written = export::litellm(
                scenario,
                &url,
                &ExportOptions {
                    keep_defaults: l.keep_defaults,
                    inline_secrets: false,
                    faults: opts.config_faults.clone(),
                },
            )
            .map_err(TopologyError::Config)?;
            let path = dir.join("litellm-config.yaml");
            crate::report::write_atomic(&path, written.yaml.as_bytes()).map_err(LaunchError::Io)?;
            env.extend(written.env.into_iter().map(|(k, v, _)| (k, v)));
            config = Some(path);
        }
        let config_text = config.as_ref().map(|p| p.display().to_string());
        let dir_text = dir.display().to_string();
        let pki = mock::pki(&self.mocks).map(|p| p.files.clone());
        let vars = |n: &str| match n {
            "port" => Some(port.clone()),
            "config" => config_text.clone(),
            "report_dir" => Some(dir_text.clone()),
            _ => n
                .strip_prefix("mocks.")
                .and_then(|m| pki.as_ref()?.by_name(m))
                .map(|p| p.display().to_string()),
        };
        let render = |t: &crate::scenario::Template| t.render_launch(|n| self.backend_url(n), vars);
        let command: Vec<String> = l.command.iter().map(render).collect();
        env.extend(l.env.iter().map(|(k, v)| (k.clone(), render(v))));
        let spec = launch::LaunchSpec {
            command: command.clone(),
            env,
            dir: dir.clone(),
        };
        let url = render(&l.url);
        let ready = render(&l.ready);
        let process = launch::start(&spec, &opts.redactor)?;
        self.gateway_url = url;
        self.launched = Some(LaunchedGateway {
            process,
            command,
            ready,
            config,
            dir,
            earlier_logs: Vec::new(),
        });
        Ok(())
    }

    /// The scenario's client TLS settings (`gateway.tls`) with its `{{ mocks.* }}`
    /// references filled in from the run's mock PKI.
    pub fn client_tls(&self, scenario: &Scenario) -> crate::scenario::Tls {
        match mock::pki(&self.mocks) {
            Some(pki) => pki.resolve(&scenario.gateway.tls),
            None => scenario.gateway.tls.clone(),
        }
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
