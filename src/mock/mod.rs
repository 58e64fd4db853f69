//! Mock model backends: our own servers speaking the providers' wire formats, each
//! recording what it received into a shared [`journal::Journal`].

pub mod azure;
pub mod bedrock;
pub mod behavior;
pub mod journal;
pub mod openai;
mod prompt;
pub use std::sync::Arc;

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
}

/// Starts one mock per backend on `host`, on 127.0.0.1 with an ephemeral port (or the
/// backend's fixed `port`).
pub fn start_all(
    host: &ServerHost,
    backends: &[BackendConfig],
    journal: &Arc<journal::Journal>,
) -> std::io::Result<Vec<RunningMock>> {
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
            let server = host
                .serve(([127, 0, 0, 1], port).into(), router)
                .map_err(|e| std::io::Error::new(e.kind(), format!("backend `{}` on 127.0.0.1:{port}: {e}", b.name)))?;
            Ok(RunningMock {
                name: b.name.clone(),
                provider: b.provider,
                server,
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

/// What `gateprobe mock` prints for a running backend: a `# name provider url` comment
/// and the `export` lines a gateway needs to reach it (shell-evaluable).
pub fn env_lines(b: &BackendConfig, url: &str) -> Vec<String> {
    let provider = match b.provider {
        BackendProvider::Openai => "openai",
        BackendProvider::Azure => "azure",
        BackendProvider::Bedrock => "bedrock",
    };
    let var = url_var(&b.name);
    // Quote only what the shell would otherwise split or expand.
    let q = |v: &str| {
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./:-+=@,".contains(c)) {
            v.to_owned()
        } else {
            format!("'{}'", v.replace('\'', "'\\''"))
        }
    };
    let mut out = vec![
        format!("# {} {provider} {url}", b.name),
        format!("export {var}={}", q(url)),
    ];
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
            }
        }
    }
    out
}
