//! `gateprobe import gitlab`: reads the Duo Self-Hosted configuration a GitLab instance
//! really has (self-hosted models, the model each Duo feature uses, the AI gateway URL)
//! over its GraphQL API ([`graphql`]), puts it in gateprobe's terms ([`setup`]), and
//! either writes it as a scenario ([`scenario`]) or compares it with a committed one
//! ([`drift`]). The GitLab token is used for the `Authorization` header only: it is in
//! no error, note, report or written file.

mod drift;
mod graphql;
mod scenario;
mod setup;

use std::time::Duration;

pub use drift::{Change, ChangeKind, Drift};
pub use scenario::Imported;
pub use setup::Note;

use crate::adapter::{Tls, TransportError};

/// Where the instance is and how to reach it.
#[derive(Clone)]
pub struct GitlabSource {
    /// The instance's base URL (`https://gitlab.example.com`), or its GraphQL endpoint.
    pub url: String,
    /// An admin token with `read_api` (and `admin_mode` under Admin Mode).
    pub token: String,
    /// Extra trusted CA certificates (PEM), for an instance behind an internal CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for GitlabSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitlabSource")
            .field("url", &crate::redact::display_url(&self.url))
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl GitlabSource {
    /// The GraphQL endpoint: `<url>/api/graphql`, unless the URL already names it.
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/api/graphql") {
            base.to_owned()
        } else {
            format!("{base}/api/graphql")
        }
    }

    /// The instance URL for display: credentials written into it are redacted.
    pub fn display(&self) -> String {
        crate::redact::display_url(self.url.trim_end_matches('/'))
    }
}

/// A value the instance may not show: read, absent from its schema (an older GitLab),
/// or `null` (no access or no entitlement).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "value")]
pub enum Readout<T> {
    /// The instance answered it.
    Read(T),
    /// The instance's GraphQL schema has no such field.
    #[default]
    Missing,
    /// The field answered `null`.
    Hidden,
}

/// A self-hosted model as GitLab's GraphQL API returns it (fields the schema lacks are
/// `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RemoteModel {
    /// Global id (`gid://gitlab/Ai::SelfHostedModel/3`).
    pub id: Option<String>,
    /// Deployment name: free text, unique.
    pub name: Option<String>,
    /// The family (`model` in GraphQL).
    pub family: Option<String>,
    /// Endpoint as stored (a dummy for Bedrock models in 18.x).
    pub endpoint: Option<String>,
    /// Identifier as stored (`""` when unset).
    pub identifier: Option<String>,
    /// Whether a key is stored.
    pub has_api_token: bool,
    /// `API`, `BEDROCK` or `VERTEX_AI` (19.x).
    pub provider: Option<String>,
}

/// One feature setting.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemoteFeature {
    /// Feature name (`duo_chat_explain_code`).
    pub feature: String,
    /// `self_hosted`, `disabled`, `vendored` or `unassigned`.
    pub provider: String,
    /// The model it uses, with its own fields (also for models the model list hides).
    pub model: Option<RemoteModel>,
}

/// What the instance showed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// `metadata { version }`, e.g. `18.9.1-ee`.
    pub version: Option<String>,
    /// `duoSettings { aiGatewayUrl }`: `Read(None)` when the instance takes the URL
    /// from its `AI_GATEWAY_URL` environment variable.
    pub gateway_url: Readout<Option<String>>,
    /// Every self-hosted model listed.
    pub models: Vec<RemoteModel>,
    /// Every feature setting listed.
    pub features: Readout<Vec<RemoteFeature>>,
}

/// Why an import or a check could not talk to the instance.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No HTTP reply (connection, TLS, timeout).
    #[error("cannot reach GitLab: {0}")]
    Transport(TransportError),
    /// A reply other than 2xx.
    #[error("GitLab answered HTTP {status}: {detail}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of its message.
        detail: String,
    },
    /// The GraphQL API answered with errors.
    #[error("GitLab's GraphQL API answered with errors: {0}")]
    GraphQl(String),
    /// A field needed answered `null`.
    #[error("GitLab answered `{0}: null`: this token cannot read the Duo Self-Hosted settings")]
    NoAccess(&'static str),
    /// The instance has no Duo Self-Hosted API.
    #[error("{0}")]
    Unsupported(String),
    /// The reply is not what GitLab's GraphQL API sends.
    #[error("GitLab's reply is unusable: {0}")]
    Reply(String),
    /// The token cannot be sent.
    #[error("{0}")]
    Token(String),
    /// The HTTP client could not be built (a bad CA file).
    #[error("cannot set up TLS: {0}")]
    Client(String),
    /// A defect of gateprobe.
    #[error("internal error: {0}")]
    Bug(String),
}

impl ImportError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ImportError::Status { status: 401, .. } | ImportError::NoAccess(_) => Some(
                "use an administrator's token with the `read_api` scope (and `admin_mode` when Admin Mode is on), on an instance with Duo Self-Hosted",
            ),
            ImportError::Status { status: 403, .. } => {
                Some("the token needs `read_api` (and `admin_mode` when Admin Mode is on)")
            }
            ImportError::Status { status: 404, .. } => {
                Some("check --url: the instance's base URL, e.g. https://gitlab.example.com")
            }
            ImportError::Transport(t) if t.kind == "tls" => {
                Some("for an instance behind an internal CA, pass the CA's PEM file with --ca")
            }
            _ => None,
        }
    }
}

/// Reads the instance's setup over GraphQL.
pub async fn fetch(src: &GitlabSource) -> Result<Snapshot, ImportError> {
    let tls = Tls {
        ca_pem: src.ca_pem.clone(),
        ..Tls::default()
    };
    let http = crate::adapter::http_client(src.timeout, &tls, true)
        .map_err(|e| ImportError::Client(TransportError::from_reqwest(e).message))?;
    let client = graphql::Client {
        http,
        endpoint: src.endpoint(),
        token: &src.token,
        timeout: src.timeout,
    };
    client.snapshot().await
}

/// How to write the scenario.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The instance, as the header comment names it (credentials redacted).
    pub source: String,
    /// The gateway URL to test instead of the instance's `aiGatewayUrl`.
    pub gateway_url: Option<String>,
}

/// The scenario text of what the instance runs, and what it leaves out.
pub fn write_scenario(snap: &Snapshot, opts: &WriteOptions) -> Imported {
    let setup = setup::Setup::from_snapshot(snap, opts.gateway_url.as_deref());
    scenario::write(&setup, opts)
}

/// Compares the instance with a scenario; `source` is the scenario's text (the
/// instance's model names are in its comments).
pub fn check(snap: &Snapshot, gateway_url: Option<&str>, scenario: &crate::scenario::Scenario, source: &str) -> Drift {
    let instance = setup::Setup::from_snapshot(snap, gateway_url);
    let committed = setup::Setup::from_scenario(scenario, source);
    drift::compare(&instance, &committed)
}
