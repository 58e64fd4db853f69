//! Mock model backends: our own servers speaking the providers' wire formats, each
//! recording what it received into a shared [`journal::Journal`].

pub mod azure;
pub mod bedrock;
pub mod behavior;
pub mod journal;
pub mod openai;
mod openai_sse;
mod personality;
mod prompt;
pub mod tls;
pub use std::sync::Arc;

use std::path::Path;

use crate::scenario::{BackendConfig, BackendProvider};
use crate::server::{Server, ServerHost};

/// A started mock backend.
#[derive(Debug)]
pub struct RunningMock {
    /// Backend name from the scenario.
    pub name: String,
    /// Wire format.
    pub provider: BackendProvider,
    /// The server (drop to stop).
    pub server: Server,
    /// The run's mock PKI, when a backend serves TLS (shared by all the mocks).
    pub pki: Option<Arc<tls::MockPki>>,
}

/// Starts one mock per backend on `host`, on 127.0.0.1 with an ephemeral port (or the
/// backend's fixed `port`); see [`start_all_in`].
pub fn start_all(
    host: &ServerHost,
    backends: &[BackendConfig],
    journal: &Arc<journal::Journal>,
) -> std::io::Result<Vec<RunningMock>> {
    start_all_in(host, backends, journal, None)
}

/// The run's mock PKI, if the mocks have one.
pub fn pki(mocks: &[RunningMock]) -> Option<&Arc<tls::MockPki>> {
    mocks.first().and_then(|m| m.pki.as_ref())
}

/// Starts one mock per backend. When a backend serves TLS, a mock PKI is made first
/// and its files written into `pki_dir` (without one, a temporary directory removed
/// when the last mock stops).
pub fn start_all_in(
    host: &ServerHost,
    backends: &[BackendConfig],
    journal: &Arc<journal::Journal>,
    pki_dir: Option<&Path>,
) -> std::io::Result<Vec<RunningMock>> {
    let pki = match backends.iter().any(|b| b.tls.is_some()) {
        true => Some(Arc::new(tls::MockPki::create(pki_dir)?)),
        false => None,
    };
    backends
        .iter()
        .map(|b| {
            let router = match b.provider {
                BackendProvider::Openai | BackendProvider::Azure => {
                    openai::OpenAiMock::new(b, Arc::clone(journal)).router()
                }
                BackendProvider::Bedrock => bedrock::BedrockMock::new(b, Arc::clone(journal)).router(),
            };
            let port = b.port.unwrap_or(0);
            let addr = ([127, 0, 0, 1], port).into();
            let served = match (b.tls, &pki) {
                (Some(mode), Some(pki)) => host.serve_tls(addr, router, pki.server_config(mode)?),
                _ => host.serve(addr, router),
            };
            let server = served
                .map_err(|e| std::io::Error::new(e.kind(), format!("backend `{}` on 127.0.0.1:{port}: {e}", b.name)))?;
            Ok(RunningMock {
                name: b.name.clone(),
                provider: b.provider,
                server,
                pki: pki.clone(),
            })
        })
        .collect()
}

/// The environment variable that carries a backend's address between `gateprobe
/// mock` and the commands that use it: `GATEPROBE_BACKEND_<NAME>_URL`, the name upper
/// case with every other character than a letter or digit as `_`.
pub fn url_var(backend: &str) -> String {
    format!("GATEPROBE_BACKEND_{}_URL", crate::text::env_name(backend))
}

/// The environment variable that carries a backend's API key from `gateprobe mock`:
/// `GATEPROBE_BACKEND_<NAME>_API_KEY`, named as [`url_var`] names the address.
pub fn key_var(backend: &str) -> String {
    let url = url_var(backend);
    format!("{}_API_KEY", url.trim_end_matches("_URL"))
}

/// What `gateprobe mock` prints for a running backend: a `# name provider url` comment
/// and the `export` lines a gateway needs to reach it (shell-evaluable).
pub fn env_lines(b: &BackendConfig, url: &str) -> Vec<String> {
    let provider = match b.provider {
        BackendProvider::Openai => "openai",
        BackendProvider::Azure => "azure",
        BackendProvider::Bedrock => "bedrock",
    };
    let var = url_var(&b.name);
    let q = shell_quote;
    let mut out = vec![
        format!("# {} {provider} {url}", b.name),
        format!("export {var}={}", q(url)),
    ];
    // The key a client (or a gateway configured by hand) must present; these are the
    // mock's own test credentials, printed to be evaluated, as the AWS keys below.
    if let Some(k) = &b.api_key {
        out.push(format!("export {}={}", key_var(&b.name), q(k)));
    }
    match b.provider {
        BackendProvider::Openai => {}
        BackendProvider::Azure => {
            out.push(format!("export AZURE_API_BASE={}", q(url)));
            out.push(format!(
                "export AZURE_API_VERSION={}",
                q(crate::wire::azure::API_VERSION)
            ));
            if let Some(k) = &b.api_key {
                out.push(format!("export AZURE_API_KEY={}", q(k)));
            }
        }
        BackendProvider::Bedrock => {
            out.push(format!("export AWS_BEDROCK_RUNTIME_ENDPOINT={}", q(url)));
            if let Some(a) = &b.aws {
                out.push(format!("export AWS_REGION_NAME={}", q(&a.region)));
                out.push(format!("export AWS_ACCESS_KEY_ID={}", q(&a.access_key_id)));
                out.push(format!("export AWS_SECRET_ACCESS_KEY={}", q(&a.secret_access_key)));
                if let Some(t) = &a.session_token {
                    out.push(format!("export AWS_SESSION_TOKEN={}", q(t)));
                }
            }
        }
    }
    out
}

/// A value as the shell reads it back: quoted only when the shell would otherwise split
/// or expand it.
pub fn shell_quote(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./:-+=@,".contains(c)) {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}
