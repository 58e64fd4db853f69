//! The command line: clap definitions, turning them into typed run settings, and the
//! mapping of outcomes to exit codes. No clap type leaves this module.

mod bench;
mod commands;
mod import;
mod mock;
mod reports;
mod setup;

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
    /// An input file is unreadable or unusable (`merge`, `compare`): same code as an
    /// invalid scenario, since both mean "fix what you gave me".
    pub const INVALID_INPUT: u8 = INVALID_SCENARIO;
    /// The harness or its infrastructure failed (gateway unreachable, ...).
    pub const HARNESS: u8 = 3;
    /// One or more checks failed.
    pub const CHECKS_FAILED: u8 = 4;

    /// The exit code of a run's verdict (`run`, and `merge` for the merged run).
    pub fn of(v: crate::report::Verdict) -> u8 {
        match v {
            crate::report::Verdict::Passed => OK,
            crate::report::Verdict::Failed => CHECKS_FAILED,
            crate::report::Verdict::Broken => HARNESS,
        }
    }
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
  gateprobe bench http://127.0.0.1:8080/ -c 50 -z 10s
  gateprobe merge shard-*/gateprobe.json -o merged
  gateprobe compare base/gateprobe.json reports/gateprobe.json --tolerance 'latency.p99=+10%'
  gateprobe import gitlab --url https://gitlab.example.com -o gitlab.yaml
  gateprobe import gitlab --url https://gitlab.example.com --check gitlab.yaml

Exit codes: 0 all checks passed, 1 usage error, 2 invalid scenario,
3 harness or infrastructure error, 4 one or more checks failed (import --check: drift).";

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
        override_usage = "gateprobe gateway <SCENARIO> [--listen <ADDR>] [--fault <NAME>]...\n       gateprobe gateway --hostile <NAME> [--listen <ADDR>]\n       gateprobe gateway --list-faults | --list-hostile",
        after_help = "Examples:\n  gateprobe gateway scenarios/quickstart.yaml --listen 127.0.0.1:5052\n  gateprobe gateway --list-faults"
    )]
    Gateway(GatewayArgs),
    /// Load-test one HTTP URL, like oha or wrk: closed loop with -c clients, or open loop at -q req/s.
    #[command(
        after_help = "Examples:\n  gateprobe bench http://127.0.0.1:8080/ -c 50 -z 10s\n  gateprobe bench http://127.0.0.1:8080/v1/models -q 2000 -z 30s --json\n  gateprobe bench http://127.0.0.1:8080/v1/chat/completions -m POST -H 'Content-Type: application/json' --body req.json -n 1000\n\nExit codes: 0 done, 1 usage error, 3 target unreachable, no request succeeded, or the\ngenerator fell behind its open-loop schedule (run invalid)."
    )]
    Bench(bench::BenchArgs),
    /// Merge shard reports exactly (histograms added, rates recomputed) and write every output format.
    #[command(
        after_help = "Examples:\n  gateprobe merge shard-1/gateprobe.json shard-2/gateprobe.json -o merged\n\nExit codes: 0 merged run passed, 2 unreadable or mismatched reports (different\nschema versions or phases, overlapping or missing shards, a sweep in several\nreports), 3 cannot write or the merged run had harness errors, 4 merged checks failed."
    )]
    Merge(reports::MergeArgs),
    /// Compare two reports phase by phase and fail on regressions beyond tolerance.
    #[command(
        after_help = "Examples:\n  gateprobe compare base.json new.json\n  gateprobe compare base.json new.json --tolerance 'latency.p99=+10%' --tolerance 'rps=-5%' --tolerance 'error_rate=+0.5'\n  gateprobe compare base.json new.json --tolerance 'chat:ttft.p90=+50' --no-default-tolerances\n\nDefaults: latency.p99=+10%, ttft.p99=+10%, rps=-5%, capacity_rps=-5%, error_rate=+0.5\n(percentage points). Metrics: rps, error_rate, output_tokens_per_s, capacity_rps, and\nlatency|ttfb|ttft|itl|tpot|gateway_overhead with .p50|.p90|.p99 (alone: all three).\n\nExit codes: 0 within tolerance, 1 usage error (bad --tolerance), 2 unreadable report,\n4 a tolerance was exceeded."
    )]
    Compare(reports::CompareArgs),
    /// Write a gateway's config for a scenario (LiteLLM `config.yaml`) pointing at gateprobe's mocks.
    #[command(
        after_help = "Examples:\n  eval \"$(gateprobe mock scenarios/litellm.yaml)\" &&   # in another shell: the mocks' addresses\n    gateprobe export litellm scenarios/litellm.yaml --output config.yaml\n  gateprobe export litellm scenarios/litellm.yaml --backend vllm-a=http://127.0.0.1:8000 --inline-secrets"
    )]
    Export(ExportArgs),
    /// Read the setup a running system really has into a scenario (`gitlab`), or check a
    /// scenario against it.
    #[command(subcommand)]
    Import(import::ImportSource),
    /// Start a scenario's mock backends alone and print the settings a gateway needs
    /// (`export` lines): in the background when stdout is not a terminal.
    #[command(
        after_help = "Examples:\n  eval \"$(gateprobe mock three-providers)\"      # returns once they listen\n  curl \"$GATEPROBE_BACKEND_VLLM_URL/v1/models\" -H \"Authorization: Bearer $GATEPROBE_BACKEND_VLLM_API_KEY\"\n  kill $GATEPROBE_MOCK_PID                        # stop them\n  gateprobe mock scenarios/aigw.yaml --env-only   # fixed-port settings, nothing started\n  gateprobe mock mocks/vllm.yaml --foreground     # until Ctrl-C, e.g. in a container"
    )]
    Mock(mock::MockArgs),
    /// Write a scenario to start from: a template (aigw, litellm, endpoint) or a
    /// built-in scenario, with the JSON Schema your editor reads next to it.
    #[command(
        after_help = "Examples:\n  gateprobe init --list\n  gateprobe init aigw -o gateprobe/my-setup.yaml\n  gateprobe init litellm -o my-proxy.yaml\n  gateprobe init endpoint > my-endpoint.yaml"
    )]
    Init(setup::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  gateprobe completions bash > ~/.local/share/bash-completion/completions/gateprobe\n  gateprobe completions zsh > ~/.zfunc/_gateprobe\n  gateprobe completions fish > ~/.config/fish/completions/gateprobe.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (or write one page per command into DIR).
    #[command(after_help = "Examples:\n  gateprobe man | man -l -\n  gateprobe man --dir /usr/local/share/man/man1")]
    Man {
        /// Write gateprobe.1, gateprobe-run.1, ... into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
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
    /// Send the conformance probes in the order this seed shuffles them into (the
    /// report names the seed of every run; this replays one). Default: a fresh seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Add an entry to the scenarios' `checks:` list (repeatable): a family, a check id
    /// pattern with `*`, or either after `!` to leave checks out, e.g.
    /// `--check '!auth.client.*'` against a gateway that bypasses client auth.
    #[arg(long = "check", value_name = "PATTERN")]
    checks: Vec<String>,
    /// Write a golden transcript of each scenario's exchanges (requests, replies, what
    /// the mocks received, verdicts; secrets redacted) to DIR/<scenario>.transcript.json.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// List passed checks too.
    #[arg(short, long)]
    verbose: bool,
    /// Run shard I of N of every load schedule (1-based). Without it, GitLab CI's
    /// CI_NODE_INDEX/CI_NODE_TOTAL (`parallel:`) or a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX with GATEPROBE_SHARD_TOTAL are used.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(u32, u32)>,
}

/// Parses `I/N` with 1 <= I <= N.
fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or("write the shard as I/N, e.g. 2/4")?;
    let i: u32 = i.trim().parse().map_err(|_| format!("`{i}` is not a shard number"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("`{n}` is not a shard count"))?;
    if i == 0 || i > n {
        return Err(format!("shard {i}/{n}: I is between 1 and N"));
    }
    Ok((i, n))
}

/// The shard from the environment: GitLab CI `parallel:` (1-based CI_NODE_INDEX) or a
/// Kubernetes Indexed Job (0-based JOB_COMPLETION_INDEX, total in GATEPROBE_SHARD_TOTAL).
fn shard_from_env(var: impl Fn(&str) -> Option<String>) -> Option<(u32, u32)> {
    let num = |k: &str| var(k).and_then(|v| v.trim().parse::<u32>().ok());
    let shard = match (num("CI_NODE_INDEX"), num("CI_NODE_TOTAL")) {
        (Some(i), Some(n)) => Some((i, n)),
        _ => match (num("JOB_COMPLETION_INDEX"), num("GATEPROBE_SHARD_TOTAL")) {
            (Some(i), Some(n)) => Some((i + 1, n)),
            _ => None,
        },
    };
    shard.filter(|&(i, n)| n > 1 && i >= 1 && i <= n)
}

#[cfg(test)]
mod tests {
    use super::{parse_shard, shard_from_env};

    #[test]
    fn shards_from_flags_and_environment() {
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("0/4").is_err() && parse_shard("5/4").is_err() && parse_shard("x").is_err());
        let gitlab = |k: &str| match k {
            "CI_NODE_INDEX" => Some("3".to_owned()),
            "CI_NODE_TOTAL" => Some("4".to_owned()),
            _ => None,
        };
        assert_eq!(shard_from_env(gitlab), Some((3, 4)));
        let k8s = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("0".to_owned()),
            "GATEPROBE_SHARD_TOTAL" => Some("2".to_owned()),
            _ => None,
        };
        assert_eq!(shard_from_env(k8s), Some((1, 2)));
        assert_eq!(shard_from_env(|_| None), None);
    }
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
    #[arg(value_name = "SCENARIO", required_unless_present_any = ["list_faults", "hostile", "list_hostile"])]
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
    /// Call whatever endpoint a request names (by default only the scenario's
    /// backends whose address is known: a `port:` or `gateprobe mock`'s variables).
    #[arg(long)]
    allow_any_upstream: bool,
    /// Serve a hostile gateway instead, one that breaks HTTP itself on every request
    /// (no scenario needed).
    #[arg(long, value_name = "NAME", value_parser = hostile_names(), conflicts_with = "faults")]
    hostile: Option<String>,
    /// Print the hostile behaviours, one a line: name, then what it does.
    #[arg(long)]
    list_hostile: bool,
}

fn hostile_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::gateway::hostile::Hostile::ALL.map(|h| h.name()))
}

fn config_fault_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::export::ConfigFault::ALL.map(|f| f.name()))
}

fn fault_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::gateway::Fault::ALL.map(|f| f.name()))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::redact::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    ExitCode::from(commands::dispatch(cli.command))
}
