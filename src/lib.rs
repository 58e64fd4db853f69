//! gateprobe: conformance and load testing for self-hosted LLM gateway setups.
//!
//! A run flows one way: a scenario file is parsed and validated ([`scenario`]),
//! compiled into a [`plan`], the topology is started (mock backends from [`mock`],
//! the reference gateway from [`gateway`], or a gateway process from [`launch`] with
//! a config written by [`export`]), the checks in [`check`] send feature
//! requests through an [`adapter`] and judge the evidence (client reply plus the
//! mocks' journal), and the resulting [`report::RunReport`] is handed to writers.
//!
//! Load runs use [`load`] (schedules and open/closed-loop executors) and record into
//! [`metrics`] (HdrHistogram recorders), sizing prompts by [`tokens`]; [`bench`] is the ad-hoc `gateprobe bench`.
//! [`import`] reads the setup a GitLab instance really runs into a scenario, or checks
//! a committed scenario against it.

pub mod adapter;
pub mod bench;
pub mod check;
pub mod cli;
pub mod export;
pub mod feature;
pub mod files;
pub mod gateway;
pub mod identifier;
pub mod import;
pub mod instance;
pub mod launch;
pub mod load;
pub mod metrics;
pub mod mock;
pub mod plan;
pub mod redact;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod server;
pub mod text;
pub mod tokens;
pub mod topology;
pub mod transcript;
pub mod wire;
