//! Scenario files: the YAML model ([`raw`]), loading with positions, `${env:…}` and
//! `{{ backends.x.url }}` resolution ([`template`]) and semantic validation
//! ([`validate`]) into a typed [`Scenario`].

pub mod behavior;
pub mod builtin;
pub mod error;
pub(crate) mod limits;
pub mod load;
pub mod profile;
pub mod raw;
pub mod schema;
pub mod selection;
pub mod template;
mod validate;
mod validate_cloud;
mod validate_gateway;
mod validate_load;
mod validate_mock;
mod validate_models;
mod validate_workload;
pub mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ScenarioError;
pub use limits::{MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_SCALAR_BYTES};
pub use template::Template;

use crate::feature::Feature;
use crate::identifier::Identifier;

/// Which gateway the scenario tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    /// The embedded reference gateway.
    Builtin,
    /// A running GitLab AI gateway (or anything speaking its API).
    Aigw,
    /// No gateway: the model endpoints themselves, checked as the gateway will use them.
    Direct,
    /// An OpenAI-compatible proxy (LiteLLM, ...): features are model aliases, client auth
    /// is a bearer key. Without a URL or launch: the reference gateway's OpenAI front.
    Openai,
}

/// Alias suffix of the endpoint without `/v1`.
pub const NO_V1_SUFFIX: &str = "--no-v1";
/// Alias suffix of the endpoint with a trailing slash.
pub const SLASH_SUFFIX: &str = "--slash";

/// How features reach models through an OpenAI-compatible proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FeaturesBy {
    /// One alias per self-hosted model; the client picks the alias per feature.
    #[default]
    Model,
    /// One alias per feature; the proxy owns the mapping.
    Feature,
}

/// A config file gateprobe writes for a launched gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchConfigKind {
    /// A LiteLLM proxy `config.yaml`.
    Litellm,
}

/// How gateprobe starts a gateway.
#[derive(Clone, Debug)]
pub struct LaunchConfig {
    /// Program and arguments.
    pub command: Vec<Template>,
    /// Added environment.
    pub env: Vec<(String, Template)>,
    /// Config file to write first.
    pub config: Option<LaunchConfigKind>,
    /// Keep the gateway's router defaults in the written config.
    pub keep_defaults: bool,
    /// The gateway's base URL.
    pub url: Template,
    /// Health URL polled until 2xx.
    pub ready: Template,
    /// Readiness deadline.
    pub timeout: Duration,
}

/// How the built-in gateway treats client authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BuiltinAuth {
    /// Require a valid bearer token (the default).
    #[default]
    Enforce,
    /// Accept everything (`AIGW_AUTH__BYPASS_EXTERNAL=true`).
    Bypass,
    /// Accept requests carrying `Bypass-Auth: true`
    /// (`AIGW_AUTH__BYPASS_EXTERNAL_WITH_HEADER=true`).
    BypassWithHeader,
}

/// The gateway block, resolved.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Kind of gateway.
    pub kind: GatewayKind,
    /// Base URL of an external gateway.
    pub url: Option<String>,
    /// Bearer token gateprobe sends as the GitLab instance.
    pub token: Option<String>,
    /// Extra headers (override the defaults of the same name).
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Auth mode of the built-in gateway.
    pub builtin_auth: BuiltinAuth,
    /// What this gateway is expected to answer when a rule is exercised.
    pub profile: profile::Profile,
    /// `openai`: aliases per model or per feature.
    pub features_by: FeaturesBy,
    /// `openai`: alias overrides by model (or feature) name.
    pub aliases: Vec<(String, String)>,
    /// `openai`: `<alias>--no-v1` and `<alias>--slash` exist.
    pub endpoint_variants: bool,
    /// How to start the gateway, when gateprobe does.
    pub launch: Option<LaunchConfig>,
    /// How certificates of an `https://` gateway (or direct endpoint) are checked.
    pub tls: Tls,
}

impl GatewayConfig {
    /// The proxy alias of a self-hosted model or feature name.
    pub fn alias(&self, name: &str) -> String {
        self.aliases
            .iter()
            .find(|(k, _)| k == name)
            .map_or_else(|| name.to_owned(), |(_, v)| v.clone())
    }
}

/// How clients check the TLS certificates of the gateway (with `kind: direct`, of the
/// model endpoints; with the built-in gateway, of the model endpoints it calls).
/// Certificates are verified against the system trust store by default; `ca` adds
/// roots (an internal CA), `verify: false` turns checking off, and a client
/// certificate is presented when one is given.
#[derive(Clone, Debug)]
pub struct Tls {
    /// Extra trusted roots, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// Whether certificates and host names are checked.
    pub verify: bool,
    /// Also trust the CA gateprobe makes for the run's TLS mocks (`{{ mocks.ca }}`).
    pub mock_ca: bool,
    /// The client certificate to present, if any.
    pub identity: Option<ClientIdentity>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            ca_pem: None,
            verify: true,
            mock_ca: false,
            identity: None,
        }
    }
}

/// A client certificate and its key.
#[derive(Clone)]
pub enum ClientIdentity {
    /// Read from the scenario's files: a PEM certificate (chain) and PKCS#8 PEM key.
    Pem {
        /// The certificate chain, PEM.
        cert: Vec<u8>,
        /// The private key, PKCS#8 PEM.
        key: Vec<u8>,
    },
    /// The client certificate gateprobe issues from the run's mock CA
    /// (`{{ mocks.client_cert }}`, `{{ mocks.client_key }}`).
    Mocks,
}

impl std::fmt::Debug for ClientIdentity {
    // The key is a secret: Debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientIdentity::Pem { cert, .. } => write!(f, "Pem {{ cert: {} bytes, key: [redacted] }}", cert.len()),
            ClientIdentity::Mocks => f.write_str("Mocks"),
        }
    }
}

impl Tls {
    /// Applies these settings to an HTTP client. A `{{ mocks.* }}` reference that was
    /// not resolved (the run has no TLS mock) adds nothing.
    pub fn apply(&self, mut b: reqwest::ClientBuilder) -> reqwest::Result<reqwest::ClientBuilder> {
        if let Some(pem) = &self.ca_pem {
            b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        if !self.verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(ClientIdentity::Pem { cert, key }) = &self.identity {
            b = b.identity(reqwest::Identity::from_pkcs8_pem(cert, key)?);
        }
        Ok(b)
    }
}

/// How a mock backend serves TLS (`tls:` of a backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockTls {
    /// HTTPS with a certificate for 127.0.0.1 and `localhost` from the run's mock CA.
    Ca,
    /// As [`MockTls::Ca`], and the client must present a certificate from that CA.
    Mtls,
    /// HTTPS with a certificate a client must refuse.
    BadCert(CertDefect),
}

/// What is wrong with a `bad_cert` mock's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertDefect {
    /// Issued by the run's CA, but for another host name than 127.0.0.1.
    WrongHost,
    /// Signed by its own key, not by any CA.
    SelfSigned,
    /// Issued by the run's CA for 127.0.0.1, and expired.
    Expired,
}

impl CertDefect {
    /// Every defect, by scenario name.
    pub const NAMES: [&str; 3] = ["wrong_host", "self_signed", "expired"];
}

/// Wire format of a mock backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendProvider {
    /// OpenAI-compatible, as vLLM serves it.
    Openai,
    /// Azure OpenAI.
    Azure,
    /// AWS Bedrock runtime.
    Bedrock,
}

/// AWS credentials and region of a Bedrock backend.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region of the credential scope.
    pub region: String,
    /// The STS session token of temporary credentials, if any.
    pub session_token: Option<String>,
}

impl AwsConfig {
    /// The credentials that sign (and that the mock verifies) requests.
    pub fn credentials(&self) -> crate::wire::aws::sigv4::Credentials {
        let c = crate::wire::aws::sigv4::Credentials::new(self.access_key_id.clone(), self.secret_access_key.clone());
        match &self.session_token {
            Some(t) => c.with_session_token(t.clone()),
            None => c,
        }
    }
}

impl std::fmt::Debug for AwsConfig {
    // Debug output ends up in logs; the secret and the token must not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("region", &self.region)
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A mock backend gateprobe starts.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Name used in templates and reports.
    pub name: String,
    /// Wire format.
    pub provider: BackendProvider,
    /// Served model names.
    pub models: Vec<String>,
    /// Required API key, if any.
    pub api_key: Option<String>,
    /// Bedrock credentials and region.
    pub aws: Option<AwsConfig>,
    /// Timing model.
    pub timing: behavior::Timing,
    /// Scripted faults, first match wins.
    pub faults: Vec<behavior::FaultRule>,
    /// A fixed port on 127.0.0.1 (default: any free port), so a gateway configured
    /// ahead of the run can reach the mock.
    pub port: Option<u16>,
    /// How the model server is set up (OpenAI backends).
    pub personality: behavior::Personality,
    /// Bedrock: models served only through an inference profile (ids, `prefix*`).
    pub profile_only: Vec<String>,
    /// Azure: the `api-version`s served.
    pub api_versions: Vec<String>,
    /// HTTPS instead of HTTP, and how.
    pub tls: Option<MockTls>,
}

impl BackendConfig {
    /// Its address when the scenario fixes its port (`https` for a TLS mock): known
    /// before it listens, to a gateway configured ahead of the run.
    pub fn fixed_url(&self) -> Option<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.port.map(|p| format!("{scheme}://127.0.0.1:{p}"))
    }
}

/// A self-hosted model as registered in GitLab.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Deployment name.
    pub name: String,
    /// Model family.
    pub family: String,
    /// Endpoint (may hold backend-address holes).
    pub endpoint: Option<Template>,
    /// API key.
    pub api_key: Option<String>,
    /// Parsed identifier.
    pub identifier: Identifier,
    /// The mock backend the endpoint points at, if it is one of ours.
    pub backend: Option<usize>,
}

/// What a feature is set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Explicitly mapped to a model (index into [`Scenario::models`]).
    Model(usize),
    /// A Chat sub-feature left unmapped: falls back to `duo_chat`'s model.
    Fallback(usize),
    /// Explicitly disabled.
    Disabled,
    /// Served by GitLab with its own (vendored) models: nothing self-hosted receives
    /// it, and a Chat sub-feature set to it does not fall back to `duo_chat`'s model.
    Vendored,
}

/// One feature's setting.
#[derive(Clone, Copy, Debug)]
pub struct FeatureSetting {
    /// The feature.
    pub feature: &'static Feature,
    /// What it is set to.
    pub target: Target,
}

/// A family of conformance checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckFamily {
    /// Requests reach the right backend, path and model.
    Routing,
    /// `/v1` endpoint handling.
    Endpoint,
    /// Client auth and API-key forwarding.
    Auth,
    /// Feature -> model mapping, fallback and disabling.
    FeatureMapping,
    /// Streamed replies are well-formed.
    Streaming,
    /// A model endpoint itself (`kind: direct`): what the AI gateway relies on.
    Vendor,
    /// A model server (`kind: direct`) set up for what each Duo feature asks of it.
    Readiness,
    /// Each feature end to end through the gateway to a model that is not a mock.
    Live,
    /// Scripted backend faults reach the client as the gateway profile predicts.
    Resilience,
}

impl CheckFamily {
    /// All families, in report order.
    pub const ALL: [CheckFamily; 9] = [
        CheckFamily::Routing,
        CheckFamily::Endpoint,
        CheckFamily::Auth,
        CheckFamily::FeatureMapping,
        CheckFamily::Streaming,
        CheckFamily::Vendor,
        CheckFamily::Readiness,
        CheckFamily::Live,
        CheckFamily::Resilience,
    ];

    /// The name used in scenarios and check ids.
    pub fn name(self) -> &'static str {
        match self {
            CheckFamily::Routing => "routing",
            CheckFamily::Endpoint => "endpoint",
            CheckFamily::Auth => "auth",
            CheckFamily::FeatureMapping => "feature_mapping",
            CheckFamily::Streaming => "streaming",
            CheckFamily::Vendor => "vendor",
            CheckFamily::Readiness => "readiness",
            CheckFamily::Live => "live",
            CheckFamily::Resilience => "resilience",
        }
    }
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Name for reports.
    pub name: String,
    /// The GitLab instance gateprobe plays (its version picks the request shapes).
    pub instance: crate::instance::Instance,
    /// The gateway under test.
    pub gateway: GatewayConfig,
    /// Mock backends.
    pub backends: Vec<BackendConfig>,
    /// Self-hosted models.
    pub models: Vec<ModelConfig>,
    /// Feature settings, in catalogue order.
    pub features: Vec<FeatureSetting>,
    /// Check families to run.
    pub checks: Vec<CheckFamily>,
    /// Which of their checks run (the `checks:` list's patterns and exclusions).
    pub selection: selection::Selection,
    /// `kind: direct`: the gateway's requests to model servers to send again.
    pub replay: Vec<crate::instance::replay::ReplayRequest>,
    /// Every secret value (keys, tokens, env-sourced header values), labelled.
    pub secrets: Vec<(String, String)>,
    /// Load phases, in order.
    pub load: Vec<load::LoadPhase>,
    /// SHA-256 of the file's text, first 16 hex digits (in reports: shards of one run
    /// ran the same file).
    pub digest: String,
}

impl Scenario {
    /// The scripted fault model `i`'s backend plays for it (`faults: [{when: {model: M},
    /// ...}]`), if it is a *fault model*.
    pub fn model_fault(&self, i: usize) -> Option<&behavior::FaultAction> {
        let m = self.models.get(i)?;
        self.backends[m.backend?]
            .faults
            .iter()
            .find(|r| matches!(&r.when, behavior::Match::Model(x) if *x == m.identifier.model))
            .map(|r| &r.action)
    }

    /// The credentials the gateway holds for its upstreams and must never give back to
    /// a client, each named by whose it is: every model's and backend's API key, and
    /// every Bedrock backend's AWS secret (the client's own token is not one).
    pub fn upstream_credentials(&self) -> Vec<(String, String)> {
        let models = self
            .models
            .iter()
            .filter_map(|m| Some((format!("the API key of model `{}`", m.name), m.api_key.clone()?)));
        let backends = self.backends.iter().flat_map(|b| {
            let key = b
                .api_key
                .clone()
                .map(|k| (format!("the API key of backend `{}`", b.name), k));
            let aws = b.aws.iter().flat_map(|a| {
                let token = a
                    .session_token
                    .clone()
                    .map(|t| (format!("the AWS session token of backend `{}`", b.name), t));
                std::iter::once((
                    format!("the AWS secret of backend `{}`", b.name),
                    a.secret_access_key.clone(),
                ))
                .chain(token)
            });
            key.into_iter().chain(aws)
        });
        models.chain(backends).filter(|(_, k)| !k.is_empty()).collect()
    }

    /// Adds an entry to the `checks:` list (`gateprobe run --check`): a family, an id
    /// pattern, or either after `!`.
    pub fn select(&mut self, entry: &str) -> Result<(), selection::EntryError> {
        self.selection.add(entry)?;
        self.checks = self.selection.families();
        Ok(())
    }

    /// The model a feature's requests go to, if any.
    pub fn model_for(&self, target: Target) -> Option<&ModelConfig> {
        match target {
            Target::Model(i) | Target::Fallback(i) => self.models.get(i),
            Target::Disabled | Target::Vendored => None,
        }
    }
}

/// Reads and validates a scenario file, resolving `${env:…}` from the process
/// environment. A file over [`MAX_FILE_BYTES`] is refused without being read whole.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let source = limits::read_text(path, "scenario", limits::Accept::Any).map_err(|e| match e.hint {
        Some(_) => e,
        None => e.hint(format!(
            "check the path; scenarios are YAML files such as scenarios/quickstart.yaml, or name a built-in one: {} (`gateprobe init --list`)",
            builtin::names(builtin::Kind::Scenario).join(", ")
        )),
    })?;
    let s = load_str(path, &source, &|name| std::env::var(name).ok())?;
    // From here on, a panic message that quotes one of its secrets is redacted.
    crate::redact::register(&s.secrets);
    Ok(s)
}

/// Validates a file built into the binary (a scenario, mock profile or template),
/// resolving `${env:…}` from the process environment, as [`load`] does for a file.
pub fn load_builtin(b: &builtin::Builtin) -> Result<Scenario, ScenarioError> {
    let s = load_str(Path::new(b.path), b.text, &|name| std::env::var(name).ok())?;
    crate::redact::register(&s.secrets);
    Ok(s)
}

/// Validates scenario text; `env` answers environment variables. Text over
/// [`MAX_FILE_BYTES`], and YAML that nests deeper than [`MAX_DEPTH`] or expands (aliases
/// included) past [`MAX_NODES`] nodes or [`MAX_SCALAR_BYTES`] of text, is refused.
pub fn load_str(path: &Path, source: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Scenario, ScenarioError> {
    limits::check_size(path, "scenario", source)?;
    validate::validate(path, source, env)
}

/// The JSON Schema of the scenario format, for editors.
pub fn json_schema() -> serde_json::Value {
    schema::json_schema()
}
