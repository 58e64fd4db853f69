//! The run's results as plain data ([`RunReport`], versioned by `schema_version`) and
//! one pure writer per output format: each writer module turns a report into the bytes
//! of its file and nothing else, so shard reports merged later ([`merge`]) rewrite every
//! format exactly as a single run would have.

mod charts;
pub mod compare;
pub mod console;
pub mod hlog;
pub mod html;
pub mod junit;
pub mod k6;
pub mod load;
pub mod markdown;
pub mod merge;
mod svg;
pub mod text;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// Version of the JSON report format; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a run found.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// Format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The tool that wrote it.
    pub tool: Tool,
    /// The scenario that was run.
    pub scenario: ScenarioInfo,
    /// The gateway that was tested.
    pub gateway: GatewayInfo,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
    /// The run was stopped by a signal before it finished.
    pub interrupted: bool,
    /// An infrastructure failure that stopped the run early, if any.
    pub aborted: Option<String>,
    /// Counts by status.
    pub summary: Summary,
    /// `I/N` when this report is one generator's shard of a run (`run --shard`);
    /// `merge` takes only a complete set of shards, or a single unsharded report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The seed the probes were shuffled with (`--seed` replays the order), or none
    /// when they went in plan order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The problems found, one per root cause, biggest first: what to read first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<Problem>,
    /// One entry per check, in plan order.
    pub checks: Vec<CheckResult>,
    /// State of the mocks' journal.
    pub journal: JournalInfo,
    /// Load phases, in scenario order (empty for a conformance-only run).
    #[serde(default)]
    pub load: Vec<load::PhaseReport>,
}

/// Tool name and version.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Always `gateprobe`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// Which scenario ran.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Path as given.
    pub path: String,
    /// SHA-256 of the scenario file's text (first 16 hex digits): shards of one run
    /// ran the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Which gateway was tested.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayInfo {
    /// `builtin`, `aigw`, `openai`, `builtin-openai` or `direct`.
    pub kind: String,
    /// Base URL.
    pub url: Option<String>,
    /// Faults active in the built-in gateway.
    pub faults: Vec<String>,
    /// The profile whose expectations judged the checks.
    pub profile: String,
    /// Where the profile came from: `builtin` or its file.
    pub profile_source: String,
    /// A gateway gateprobe launched: its command, pid and captured output.
    pub launched: Option<LaunchInfo>,
    /// TLS certificates were not verified (`gateway.tls.verify: false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_unverified: bool,
}

/// A gateway process gateprobe started and stopped.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchInfo {
    /// Program and arguments (secrets redacted).
    pub command: Vec<String>,
    /// Process id.
    pub pid: Option<u32>,
    /// Milliseconds until the ready URL answered 2xx.
    pub ready_ms: Option<f64>,
    /// How it ended: `stopped` (by gateprobe), or how it exited on its own.
    pub exit: Option<String>,
    /// Captured stdout and stderr (redacted), relative to the report directory.
    pub logs: Vec<String>,
    /// The config file gateprobe wrote for it, relative to the report directory.
    pub config: Option<String>,
    /// Times it was started again because another process took its port first (the
    /// output of each earlier start is kept as `gateway.stdout.N.log`, ...).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port_retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Counts by status.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// All checks.
    pub total: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that ran and found the gateway wrong.
    pub failed: usize,
    /// Checks the harness could not complete.
    pub errors: usize,
    /// Checks that do not apply.
    pub skipped: usize,
    /// Checks whose rule the gateway broke in a way its profile tolerates: reported,
    /// not failing the run.
    #[serde(default)]
    pub warnings: usize,
}

impl Summary {
    /// Counts the statuses of `checks` (a slice of them, or any run of borrowed ones).
    pub fn of<'c>(checks: impl IntoIterator<Item = &'c CheckResult>) -> Self {
        let mut s = Summary::default();
        for c in checks {
            s.total += 1;
            match c.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Error => s.errors += 1,
                Status::Skipped => s.skipped += 1,
                Status::Warning => s.warnings += 1,
            }
        }
        s
    }
}

/// A problem the run found: a root cause, and the failed checks it explains.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// The cause in one sentence.
    pub sentence: String,
    /// Whether the cause is in the setup (what the admin configured: an endpoint, a
    /// key) rather than in the gateway.
    #[serde(default)]
    pub setup: bool,
    /// The ids of the failed checks it explains.
    pub checks: Vec<String>,
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The gateway kept the rule.
    Passed,
    /// The gateway broke the rule.
    Failed,
    /// The harness could not tell (gateway unreachable, timeout, ...).
    Error,
    /// The check does not apply to this setup.
    Skipped,
    /// The gateway broke the rule in a way its profile tolerates (the profile says
    /// why): reported, but the run does not fail for it.
    Warning,
}

/// One check's result.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// Stable id, `family.subject.rule`.
    pub id: String,
    /// Check family.
    pub family: String,
    /// The rule, in words.
    pub rule: String,
    /// The gateway profile whose prediction judged this check; `null` for rules every
    /// gateway must keep the same way.
    pub profile: Option<String>,
    /// Outcome.
    pub status: Status,
    /// What the rule expects here.
    pub expected: String,
    /// What was observed.
    pub actual: String,
    /// Evidence: the client requests and what the backends received.
    pub evidence: Vec<Evidence>,
}

/// One client request and its consequences.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Correlation id planted in the request.
    pub correlation_id: String,
    /// What gateprobe sent.
    pub request: RequestInfo,
    /// What the gateway answered, if it answered.
    pub response: Option<ResponseInfo>,
    /// Why there was no answer.
    pub transport_error: Option<String>,
    /// What the mock backends received for this request.
    pub backend: Vec<BackendHit>,
}

/// A client request.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInfo {
    /// Gateway path.
    pub path: String,
    /// Feature.
    pub feature: String,
    /// Self-hosted model name.
    pub model: String,
    /// Endpoint sent with the request.
    pub endpoint: String,
    /// Identifier sent with the request.
    pub identifier: String,
    /// Whether a stream was requested.
    pub stream: bool,
    /// Credentials presented (`valid`, `missing`, `wrong_token`).
    pub auth: String,
}

/// A gateway response.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInfo {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: Option<String>,
    /// Extracted content (first 200 characters).
    pub content: String,
    /// Body (first 500 characters).
    pub body: String,
    /// Error surfaced by the gateway.
    pub error: Option<String>,
    /// How the body broke off before its end, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Milliseconds to the end of the body.
    pub elapsed_ms: f64,
}

/// A request a backend received.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendHit {
    /// Backend name.
    pub backend: String,
    /// Method.
    pub method: String,
    /// Raw path.
    pub path: String,
    /// `model` of the JSON body, if any.
    pub model: Option<String>,
    /// Authorization header (secrets redacted).
    pub authorization: Option<String>,
    /// Status the mock answered (0: none before the check looked, e.g. a stalled mock).
    pub status: u16,
    /// Arrival, milliseconds since the run's epoch.
    pub at_ms: f64,
}

/// Journal bookkeeping.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalInfo {
    /// Entries recorded.
    pub entries: u64,
    /// Entries dropped to stay bounded.
    pub dropped: u64,
}

/// What a run comes to: the CI gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check that applied passed (warnings included).
    Passed,
    /// A check failed: the gateway broke a rule.
    Failed,
    /// The run could not tell: a check could not be completed, nothing was checked,
    /// or the run was aborted or interrupted.
    Broken,
}

impl RunReport {
    /// The run's verdict, from its checks (not the stored summary) and how it ended.
    /// A run in which nothing was judged (every check skipped, or none) is not a pass:
    /// a gate must not go green over a system it never looked at.
    pub fn verdict(&self) -> Verdict {
        let s = Summary::of(&self.checks);
        if s.failed > 0 {
            Verdict::Failed
        } else if s.errors > 0 || self.aborted.is_some() || self.interrupted || s.total == s.skipped {
            Verdict::Broken
        } else {
            Verdict::Passed
        }
    }

    /// The report with every secret replaced, whatever text field it hid in. Check
    /// statuses and encoded histograms are structure and stay; names (map keys) too.
    /// Should the redacted text not make a report again, only its counts, timings and
    /// statuses are kept: a report never goes out unredacted.
    pub fn redacted(&self, r: &Redactor) -> RunReport {
        let text = |redact: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(self).ok()?;
            redact(&mut v);
            serde_json::from_value::<RunReport>(v).ok()
        };
        text(&|v| r.redact_json_values(v, STRUCTURE)).unwrap_or_else(|| self.skeleton())
    }
}

impl RunReport {
    /// The report without any text: counts, timings and statuses only.
    fn skeleton(&self) -> RunReport {
        let withheld = || "[withheld]".to_owned();
        RunReport {
            shard: self.shard.clone(),
            seed: self.seed,
            diagnosis: Vec::new(),
            schema_version: self.schema_version,
            tool: self.tool.clone(),
            scenario: ScenarioInfo {
                name: withheld(),
                path: withheld(),
                digest: self.scenario.digest.clone(),
            },
            gateway: GatewayInfo {
                kind: self.gateway.kind.clone(),
                url: None,
                faults: Vec::new(),
                profile: withheld(),
                profile_source: withheld(),
                launched: None,
                tls_unverified: self.gateway.tls_unverified,
            },
            started_at: self.started_at.clone(),
            duration_ms: self.duration_ms,
            interrupted: self.interrupted,
            aborted: Some("[withheld: the report could not be redacted]".into()),
            summary: self.summary,
            checks: Vec::new(),
            journal: self.journal,
            load: Vec::new(),
        }
    }
}

/// Report fields whose string values are structure, never text that could hold a
/// secret: the check status (an enum) and encoded histograms.
const STRUCTURE: &[&str] = &["status", "histogram", "schema_version", "digest"];

/// JSON Schema of the report.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RunReport)).unwrap_or_default()
}

/// Output formats written to the report directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `gateprobe.json`: the whole report.
    Json,
    /// `junit.xml`: one testcase per check.
    Junit,
    /// `summary.md`: a Markdown summary sized for a merge-request comment.
    Markdown,
    /// `report.html`: one self-contained page with charts (load runs only).
    Html,
    /// `load-performance.json`: k6's summary export, for GitLab's Load Performance
    /// widget (load runs only).
    K6,
    /// `<phase>.hlog`: an HdrHistogram interval log per phase (load runs only).
    Hlog,
}

/// One file a format writes: its name inside the report directory and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFile {
    /// File name, no directory part.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

impl Format {
    /// All file formats, in the order they are written.
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Junit,
        Format::Markdown,
        Format::Html,
        Format::K6,
        Format::Hlog,
    ];

    /// Whether the format is written for `report`: the load formats describe load
    /// phases and have nothing to say about a conformance-only run.
    pub fn applies_to(self, report: &RunReport) -> bool {
        match self {
            Format::Json | Format::Junit | Format::Markdown => true,
            Format::Html | Format::K6 | Format::Hlog => !report.load.is_empty(),
        }
    }

    /// Renders the report in this format: one file, or one per phase for `.hlog`.
    pub fn render(self, report: &RunReport) -> Vec<ReportFile> {
        let one = |name: &str, bytes: Vec<u8>| {
            vec![ReportFile {
                name: name.to_owned(),
                bytes,
            }]
        };
        match self {
            Format::Json => {
                let mut v = serde_json::to_vec_pretty(report).unwrap_or_default();
                v.push(b'\n');
                one("gateprobe.json", v)
            }
            Format::Junit => one("junit.xml", junit::render(report).into_bytes()),
            Format::Markdown => one("summary.md", markdown::render(report).into_bytes()),
            Format::Html => one("report.html", html::render(report).into_bytes()),
            Format::K6 => one("load-performance.json", k6::render(report).into_bytes()),
            Format::Hlog => hlog::file_names(report)
                .into_iter()
                .zip(&report.load)
                .map(|(name, phase)| ReportFile {
                    name,
                    bytes: hlog::render(report, phase),
                })
                .collect(),
        }
    }
}

/// Writes every format that applies to `report` into `dir`, each file atomically (temp
/// file, then rename), and returns the paths written.
pub fn write_all(report: &RunReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    Format::ALL
        .iter()
        .filter(|f| f.applies_to(report))
        .flat_map(|f| f.render(report))
        .map(|file| write_atomic(&dir.join(&file.name), &file.bytes))
        .collect()
}

pub use crate::files::write_atomic;
