//! Where a load phase's requests go: through the gateway front (as the GitLab instance
//! or an OpenAI client of a proxy), or straight to a model endpoint (as the gateway
//! itself would call it). One request, either way, carries the phase's workload.

use std::time::Duration;

use super::workload::Drawn;
use crate::adapter::model::{ModelClient, ModelTarget};
use crate::adapter::timed::Timed;
use crate::adapter::{Adapter, ModelFields};
use crate::feature::Feature;
use crate::plan::Probe;

/// One way to send a phase's request.
#[derive(Clone, Debug)]
pub enum Route {
    /// Through the gateway under test.
    Gateway {
        /// The gateway front's client.
        adapter: Adapter,
        /// The request (feature, model, stream; the proxy alias).
        probe: Probe,
        /// The model fields sent with it.
        fields: ModelFields,
    },
    /// Straight to the model's endpoint.
    Direct {
        /// The client.
        client: ModelClient,
        /// The endpoint.
        target: ModelTarget,
        /// The feature whose model request is sent.
        feature: &'static Feature,
        /// Ask for a stream.
        stream: bool,
        /// Leave the workload's instructions out: the paired half of a phase through
        /// the AI gateway API, whose requests carry no instructions (the gateway adds
        /// its own template, which then counts as its overhead).
        without_system: bool,
    },
}

impl Route {
    /// `gateway` or `direct`, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Gateway { .. } => "gateway",
            Route::Direct { .. } => "direct",
        }
    }

    /// Sends one request: `drawn` is the workload's prompt, or `None` for the canned
    /// request (a gateway's own canned shape; the canned prompt for a model endpoint).
    pub async fn send(&self, cid: &str, drawn: Option<&Drawn>, gap: &mut impl FnMut(Duration)) -> Timed {
        match self {
            Route::Gateway { adapter, probe, fields } => {
                let prompt = drawn.map(|d| (&d.prompt, d.generation));
                adapter.send_timed(probe, fields, cid, prompt, gap).await
            }
            Route::Direct {
                client,
                target,
                feature,
                stream,
                without_system,
            } => {
                let owned;
                let d = match drawn {
                    Some(d) if *without_system && d.prompt.system.is_some() => {
                        let mut d = d.clone();
                        d.prompt.system = None;
                        owned = d;
                        &owned
                    }
                    Some(d) => d,
                    None => {
                        owned = super::workload::canned(feature, cid);
                        &owned
                    }
                };
                client
                    .send_timed(target, feature, (&d.prompt, d.generation), *stream, cid, gap)
                    .await
            }
        }
    }
}
