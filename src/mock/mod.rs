//! Mock model backends: our own servers speaking the providers' wire formats, each
//! recording what it received into a shared [`journal::Journal`].

pub mod azure;
pub mod behavior;
pub mod journal;
pub mod openai;
pub mod rng;

use std::sync::Arc;

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

/// Starts one mock per backend on `host`, on 127.0.0.1 with an ephemeral port.
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
            };
            let server = host.serve(([127, 0, 0, 1], 0).into(), router)?;
            Ok(RunningMock {
                name: b.name.clone(),
                provider: b.provider,
                server,
            })
        })
        .collect()
}
