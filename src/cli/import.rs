//! `gateprobe import gitlab`: the arguments, reading the token and CA file, printing
//! notes and drift (text or JSON), and the exit codes. Reading the instance, writing
//! the scenario and comparing are in the library ([`crate::import`]). Everything
//! printed passes through a redactor that knows the token.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::commands::{runtime, say};
use super::exit;
use crate::import::{self, GitlabSource, ImportError, Note, WriteOptions};
use crate::redact::Redactor;

/// Where to import from.
#[derive(Debug, Subcommand)]
pub(super) enum ImportSource {
    /// Read a GitLab instance's Duo Self-Hosted setup (self-hosted models, feature
    /// settings, AI gateway URL) over GraphQL into a scenario, or check a scenario
    /// against it.
    #[command(
        after_help = "Examples:\n  GITLAB_TOKEN=glpat-... gateprobe import gitlab --url https://gitlab.example.com -o gitlab.yaml\n  gateprobe import gitlab --url https://gitlab.example.com --check gitlab.yaml --format json\n  gateprobe import gitlab --url https://gitlab.internal --ca internal-ca.pem --gateway-url http://aigw.internal:5052\n\nThe token is an administrator's with `read_api` (and `admin_mode` under Admin Mode).\n\nExit codes: 0 written (or, with --check, no drift), 1 usage error (no token), 2 an\ninvalid scenario or CA file, or with --strict something left out, 3 GitLab unreachable\nor refusing, 4 drift."
    )]
    Gitlab(GitlabArgs),
}

#[derive(Debug, Args)]
pub(super) struct GitlabArgs {
    /// The instance's base URL, e.g. https://gitlab.example.com.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Where to write the scenario (default: stdout).
    #[arg(short, long, value_name = "FILE", conflicts_with = "check")]
    output: Option<PathBuf>,
    /// The environment variable that holds the token.
    #[arg(long, value_name = "NAME", default_value = "GITLAB_TOKEN")]
    token_env: String,
    /// The AI gateway to test instead of the instance's `aiGatewayUrl` (which is not
    /// shown when the instance takes it from its AI_GATEWAY_URL environment variable).
    #[arg(long, value_name = "URL")]
    gateway_url: Option<String>,
    /// Exit 2 when anything the instance has is left out (an unknown feature or family,
    /// an identifier gateprobe cannot use, ...).
    #[arg(long)]
    strict: bool,
    /// How to print the summary, or the drift report with --check.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"], default_value = "text")]
    format: String,
    /// Compare the instance with this scenario instead of writing one.
    #[arg(long, value_name = "SCENARIO")]
    check: Option<PathBuf>,
    /// A PEM file of extra trusted CA certificates (the instance's internal CA).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// How long one GraphQL request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The version of the JSON printed with `--format json`.
const SCHEMA_VERSION: u32 = 1;

pub(super) fn import_cmd(source: ImportSource) -> u8 {
    match source {
        ImportSource::Gitlab(a) => gitlab_cmd(a),
    }
}

fn is_http(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

fn gitlab_cmd(a: GitlabArgs) -> u8 {
    if !is_http(&a.url) {
        eprintln!("error: --url must be the instance's http(s) URL, e.g. https://gitlab.example.com");
        return exit::USAGE;
    }
    if a.gateway_url.as_deref().is_some_and(|u| !is_http(u)) {
        eprintln!("error: --gateway-url must be an http(s) URL, e.g. http://aigw.internal:5052");
        return exit::USAGE;
    }
    let token = match std::env::var(&a.token_env) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            eprintln!(
                "error: no GitLab token: ${} is not set\n  = help: set it to an administrator's token with the `read_api` scope, or name another variable with --token-env",
                a.token_env
            );
            return exit::USAGE;
        }
    };
    let secrets: Vec<(String, String)> = std::iter::once(("GitLab token".to_owned(), token.clone()))
        .chain(crate::redact::url_secrets("--url", &a.url))
        .collect();
    crate::redact::register(&secrets);
    let redactor = Redactor::new(secrets);
    let ca_pem = match &a.ca {
        // Bounded: a CA bundle is small, and `/dev/zero` must not exhaust memory.
        Some(p) => match crate::files::read_bounded(p, 4 * 1024 * 1024, crate::files::Accept::Any) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: cannot read the CA file {}: {e}", p.display());
                return exit::INVALID_INPUT;
            }
        },
        None => None,
    };
    // The scenario first: a bad one needs no network.
    let committed = match &a.check {
        Some(p) => match crate::scenario::load(p).and_then(|s| {
            crate::scenario::limits::read_text(p, "scenario", crate::scenario::limits::Accept::Any)
                .map(|text| (s, text))
        }) {
            Ok(c) => Some(c),
            Err(e) => {
                eprint!("{e}");
                return exit::INVALID_SCENARIO;
            }
        },
        None => None,
    };
    let source = GitlabSource {
        url: a.url.clone(),
        token,
        ca_pem,
        timeout: TIMEOUT,
    };
    let Some(rt) = runtime() else { return exit::HARNESS };
    let snap = match rt.block_on(import::fetch(&source)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", redactor.redact(&e.to_string()));
            if let Some(h) = e.hint() {
                eprintln!("  = help: {h}");
            }
            return match e {
                ImportError::Client(_) => exit::INVALID_INPUT,
                ImportError::Token(_) => exit::USAGE,
                _ => exit::HARNESS,
            };
        }
    };
    let out = Out {
        json: a.format == "json",
        redactor,
        instance: source.display(),
        strict: a.strict,
    };
    match committed {
        Some((scenario, text)) => {
            let drift = import::check(&snap, a.gateway_url.as_deref(), &scenario, &text);
            out.drift(&drift, &scenario.path.display().to_string())
        }
        None => {
            let opts = WriteOptions {
                source: source.display(),
                gateway_url: a.gateway_url.clone(),
            };
            let imported = import::write_scenario(&snap, &opts);
            out.imported(&imported, snap.version.as_deref(), a.output.as_ref())
        }
    }
}

/// How results are printed.
struct Out {
    json: bool,
    redactor: Redactor,
    instance: String,
    strict: bool,
}

impl Out {
    fn say(&self, text: &str) {
        say(self.redactor.redact(text));
    }

    fn err(&self, text: &str) {
        eprintln!("{}", self.redactor.redact(text));
    }

    fn json(&self, mut v: serde_json::Value) {
        self.redactor.redact_json_values(&mut v, &[]);
        say(serde_json::to_string_pretty(&v).unwrap_or_default());
    }

    /// Prints the notes (text mode) and says whether `--strict` refuses them.
    fn notes(&self, notes: &[Note]) -> bool {
        let refused = self.strict && notes.iter().any(|n| n.skipped);
        if !self.json {
            for n in notes {
                let word = match (n.skipped, refused) {
                    (true, true) => "error: not imported",
                    (true, false) => "note: not imported",
                    (false, _) => "note",
                };
                self.err(&format!("{word}: {}: {}", n.item, n.text));
            }
        }
        if refused && !self.json {
            self.err("error: --strict: the instance has settings gateprobe cannot represent (above)");
        }
        refused
    }

    fn imported(&self, imp: &import::Imported, version: Option<&str>, output: Option<&PathBuf>) -> u8 {
        let refused = self.notes(&imp.notes);
        let display = output.map_or_else(|| PathBuf::from("imported.yaml"), Clone::clone);
        // A written scenario must read back: anything else is a bug of the writer.
        if let Err(e) = crate::scenario::load_str(&display, &imp.yaml, &|_| None) {
            self.err(&format!(
                "error: gateprobe wrote a scenario it cannot read back (a bug in gateprobe):\n{e}"
            ));
            return exit::HARNESS;
        }
        let mut written = None;
        if !refused && let Some(p) = output {
            if let Err(e) = crate::report::write_atomic(p, self.redactor.redact(&imp.yaml).as_bytes()) {
                self.err(&format!("error: cannot write {}: {e}", p.display()));
                return exit::HARNESS;
            }
            written = Some(p.display().to_string());
        }
        if self.json {
            self.json(serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "instance": self.instance,
                "version": version,
                "output": written,
                "models": imp.models,
                "features": imp.features,
                "strict_refused": refused,
                "notes": imp.notes,
                "scenario": if output.is_none() && !refused { Some(&imp.yaml) } else { None },
            }));
        } else if !refused {
            match &written {
                Some(p) => self.err(&format!(
                    "wrote {p}: {} models and {} features of {} (GitLab {})",
                    imp.models,
                    imp.features,
                    self.instance,
                    version.unwrap_or("of unknown version")
                )),
                None => self.say(imp.yaml.trim_end()),
            }
        }
        if refused { exit::INVALID_INPUT } else { exit::OK }
    }

    fn drift(&self, d: &import::Drift, scenario: &str) -> u8 {
        let refused = self.notes(&d.notes);
        let code = if refused {
            exit::INVALID_INPUT
        } else if d.changes.is_empty() {
            exit::OK
        } else {
            exit::CHECKS_FAILED
        };
        if self.json {
            self.json(serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "instance": self.instance,
                "scenario": scenario,
                "drift": !d.changes.is_empty(),
                "strict_refused": refused,
                "models": d.models,
                "features": d.features,
                "gateway_compared": d.gateway_compared,
                "changes": d.changes,
                "notes": d.notes,
            }));
            return code;
        }
        let compared = format!(
            "{} models, {} features{}",
            d.models,
            d.features,
            if d.gateway_compared { ", the gateway URL" } else { "" }
        );
        if d.changes.is_empty() {
            self.say(&format!("no drift: {scenario} matches {} ({compared})", self.instance));
        } else {
            let n = d.changes.len();
            self.say(&format!(
                "drift: {n} difference{} between {scenario} and {} ({compared} compared):",
                if n == 1 { "" } else { "s" },
                self.instance
            ));
            for c in &d.changes {
                self.say(&format!("  - {c}"));
            }
        }
        code
    }
}
