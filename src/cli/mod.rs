//! The command line: clap definitions, turning them into typed run settings, and the
//! mapping of outcomes to exit codes. No clap type leaves this module.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, a contract for CI gates.
pub mod exit {
    /// Every check passed.
    pub const OK: u8 = 0;
    /// The command line was wrong.
    pub const USAGE: u8 = 1;
    /// A scenario is invalid.
    pub const INVALID_SCENARIO: u8 = 2;
    /// The harness or its infrastructure failed (gateway unreachable, ...).
    pub const HARNESS: u8 = 3;
    /// One or more checks failed.
    pub const CHECKS_FAILED: u8 = 4;
}

const EXAMPLES: &str = "\
Examples:
  gateprobe run scenarios/quickstart.yaml
  gateprobe run scenarios/quickstart.yaml --builtin-fault append-v1
  gateprobe run my-setup.yaml --gateway-url http://127.0.0.1:5052 --report-dir out
  gateprobe run scenarios/litellm.yaml                  # launches a LiteLLM proxy
  gateprobe export litellm scenarios/litellm.yaml --backend vllm-a=http://127.0.0.1:8000
  gateprobe validate scenarios/*.yaml
  gateprobe gateway --list-faults

Exit codes: 0 all checks passed, 1 usage error, 2 invalid scenario,
3 harness or infrastructure error, 4 one or more checks failed.";

#[derive(Debug, Parser)]
#[command(name = "gateprobe", version, about = "Conformance and load testing for self-hosted LLM gateway setups", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios' conformance checks and write reports.
    #[command(
        after_help = "Examples:\n  gateprobe run scenarios/quickstart.yaml\n  gateprobe run scenarios/quickstart.yaml --builtin-fault drop-api-key --report-dir /tmp/r"
    )]
    Run(RunArgs),
    /// Parse and check scenarios without touching the network.
    #[command(after_help = "Example:\n  gateprobe validate scenarios/quickstart.yaml")]
    Validate {
        /// Scenario files.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the scenario format (or of the JSON report).
    #[command(after_help = "Examples:\n  gateprobe schema > scenario.schema.json\n  gateprobe schema --report")]
    Schema {
        /// The schema of gateprobe.json instead.
        #[arg(long)]
        report: bool,
    },
    /// Run the built-in reference gateway alone until Ctrl-C.
    #[command(
        after_help = "Examples:\n  gateprobe gateway scenarios/quickstart.yaml --listen 127.0.0.1:5052\n  gateprobe gateway --list-faults"
    )]
    Gateway(GatewayArgs),
    /// Write a gateway's config for a scenario (LiteLLM `config.yaml`) pointing at gateprobe's mocks.
    #[command(
        after_help = "Examples:\n  eval \"$(gateprobe mock scenarios/litellm.yaml)\" &&   # in another shell: the mocks' addresses\n    gateprobe export litellm scenarios/litellm.yaml --output config.yaml\n  gateprobe export litellm scenarios/litellm.yaml --backend vllm-a=http://127.0.0.1:8000 --inline-secrets"
    )]
    Export(ExportArgs),
    /// Start a scenario's mock backends alone and print their URLs until Ctrl-C.
    #[command(after_help = "Example:\n  eval \"$(gateprobe mock scenarios/quickstart.yaml)\"")]
    Mock {
        /// Scenario file.
        #[arg(value_name = "SCENARIO")]
        scenario: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Scenario files.
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,
    /// Where reports go (one subdirectory per scenario when several run).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    report_dir: PathBuf,
    /// Test the gateway at this URL instead of the scenario's.
    #[arg(long, value_name = "URL")]
    gateway_url: Option<String>,
    /// Break one rule in the built-in gateway (repeatable); see `gateprobe gateway --list-faults`.
    #[arg(long = "builtin-fault", value_name = "NAME", value_parser = fault_names())]
    faults: Vec<String>,
    /// Break the gateway config gateprobe writes for a launched gateway (repeatable):
    /// strip-v1, wrong-backend-key, swap-backends, wrong-aws-region.
    #[arg(long = "config-fault", value_name = "NAME", value_parser = config_fault_names())]
    config_faults: Vec<String>,
    /// List passed checks too.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Which gateway's config.
    #[arg(value_parser = ["litellm"])]
    gateway: String,
    /// Scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// Where to write it (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A mock's address, NAME=URL (repeatable); default: $GATEPROBE_BACKEND_<NAME>_URL as
    /// `gateprobe mock` exports it.
    #[arg(long = "backend", value_name = "NAME=URL")]
    backends: Vec<String>,
    /// Keep LiteLLM's router defaults instead of `num_retries: 0`, `disable_cooldowns: true`.
    #[arg(long)]
    keep_defaults: bool,
    /// Write key values into the file instead of `os.environ/` references.
    #[arg(long)]
    inline_secrets: bool,
    /// Break the config on purpose (repeatable).
    #[arg(long = "config-fault", value_name = "NAME", value_parser = config_fault_names())]
    config_faults: Vec<String>,
}

#[derive(Debug, Args)]
struct GatewayArgs {
    /// Scenario whose gateway settings (auth) to use.
    #[arg(value_name = "SCENARIO", required_unless_present = "list_faults")]
    scenario: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5052")]
    listen: std::net::SocketAddr,
    /// Break one rule (repeatable).
    #[arg(long = "fault", value_name = "NAME", value_parser = fault_names())]
    faults: Vec<String>,
    /// Print the faults, one a line: name, then what it breaks.
    #[arg(long)]
    list_faults: bool,
}

fn config_fault_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::export::ConfigFault::ALL.map(|f| f.name()))
}

fn fault_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::gateway::Fault::ALL.map(|f| f.name()))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    ExitCode::from(commands::dispatch(cli.command))
}
