//! Commands that set gateprobe up rather than test anything: `init` (a scenario to start
//! from), `completions` and `man` (generated from the clap definition, so they always
//! match `--help`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};

use super::commands::say;
use super::{Cli, exit};
use crate::scenario::builtin::{self, Builtin, Kind};

/// The line that points yaml-language-server (VS Code's YAML extension, Neovim's
/// yamlls, ...) at the schema written next to the scenario.
pub const MODELINE: &str = "# yaml-language-server: $schema=scenario.schema.json";

/// Name of the schema file `init` writes next to the scenario.
const SCHEMA_FILE: &str = "scenario.schema.json";

#[derive(Debug, Args)]
pub(super) struct InitArgs {
    /// Template: `aigw` (my AI gateway), `litellm` (my LiteLLM proxy), `endpoint` (my
    /// model endpoint); or a built-in scenario or mock profile to copy (see --list).
    #[arg(value_name = "TEMPLATE", required_unless_present = "list")]
    template: Option<String>,
    /// Write the scenario here, and the JSON Schema editors read next to it (default:
    /// the scenario to stdout, no schema).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
    /// List the templates, built-in scenarios and mock profiles.
    #[arg(long)]
    list: bool,
}

pub(super) fn init_cmd(a: InitArgs) -> u8 {
    if a.list {
        list();
        return exit::OK;
    }
    let Some(name) = a.template.as_deref() else {
        return exit::USAGE;
    };
    let Some(b) = builtin::template(name).or_else(|| {
        builtin::ALL
            .iter()
            .find(|b| b.kind != Kind::Template && (b.name == name || b.path == name))
    }) else {
        let all: Vec<&str> = builtin::ALL.iter().map(|b| b.name).collect();
        let hint = crate::scenario::error::did_you_mean(name, all)
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        eprintln!(
            "error: no template or built-in scenario named `{name}`\n  = help: {hint}templates: {}; `gateprobe init --list` shows every one",
            builtin::names(Kind::Template).join(", ")
        );
        return exit::USAGE;
    };
    let text = with_modeline(b);
    let Some(path) = &a.output else {
        say(text.trim_end());
        return exit::OK;
    };
    match write_scenario(path, &text, a.force) {
        Ok(schema) => {
            eprintln!(
                "wrote {} ({}) and {}, the JSON Schema your editor reads through the file's first line\nnext: gateprobe validate {}",
                path.display(),
                b.about,
                schema.display(),
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                eprintln!("  = help: pass --force to overwrite it, or choose another -o FILE");
                exit::USAGE
            } else {
                exit::HARNESS
            }
        }
    }
}

fn list() {
    for (kind, title) in [
        (Kind::Template, "templates (gateprobe init NAME -o FILE):"),
        (
            Kind::Scenario,
            "built-in scenarios (gateprobe run NAME, or init NAME to copy):",
        ),
        (Kind::Mock, "built-in mock profiles (gateprobe mock NAME):"),
    ] {
        say(title);
        for b in builtin::ALL.iter().filter(|b| b.kind == kind) {
            say(format_args!("  {:<18} {}", b.name, b.about));
        }
    }
}

/// The file's text with the yaml-language-server modeline first.
fn with_modeline(b: &Builtin) -> String {
    if b.text.starts_with(MODELINE) {
        b.text.to_owned()
    } else {
        format!("{MODELINE}\n{}", b.text)
    }
}

/// Writes the scenario (refusing to overwrite unless `force`) and the schema next to
/// it; returns the schema's path.
fn write_scenario(path: &Path, text: &str, force: bool) -> std::io::Result<PathBuf> {
    if path.exists() && !force {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists", path.display()),
        ));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    crate::report::write_atomic(path, text.as_bytes())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))?;
    let schema_path = dir.join(SCHEMA_FILE);
    let mut schema = serde_json::to_vec_pretty(&crate::scenario::json_schema()).unwrap_or_default();
    schema.push(b'\n');
    crate::report::write_atomic(&schema_path, &schema)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", schema_path.display())))?;
    Ok(schema_path)
}

pub(super) fn completions_cmd(shell: clap_complete::Shell) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gateprobe", &mut out);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    exit::OK
}

pub(super) fn man_cmd(dir: Option<&Path>) -> u8 {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("error: cannot render the man page: {e}");
                return exit::HARNESS;
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
            exit::OK
        }
        Some(dir) => {
            // One page per command: gateprobe.1, gateprobe-run.1, ...
            let written = std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir));
            match written {
                Ok(()) => {
                    eprintln!("wrote the man pages to {}", dir.display());
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: cannot write the man pages to {}: {e}", dir.display());
                    exit::HARNESS
                }
            }
        }
    }
}
