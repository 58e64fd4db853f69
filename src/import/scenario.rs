//! Writes an imported [`Setup`] as a scenario file: models under slugified names (the
//! GitLab name and id in a comment above each, which `--check` reads back), each
//! endpoint's server turned into a mock backend that keeps the endpoint's path, key
//! placeholders the mocks check, features as model | `disabled` | `vendored` | left out,
//! and the gateway as `kind: aigw`. Every value is quoted unless it is plainly a
//! string, and every comment is one line, whatever text the instance holds.

use std::fmt::Write as _;

use super::WriteOptions;
use super::setup::{Endpoint, Model, Note, Setting, Setup, major_minor, quoted, slug};
use crate::identifier::Provider;

/// The scenario written, and what it leaves out.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Imported {
    /// The scenario text.
    #[serde(skip)]
    pub yaml: String,
    /// Items left out (`skipped`) and facts worth knowing.
    pub notes: Vec<Note>,
    /// Models written.
    pub models: usize,
    /// Features written with a value (model, `disabled` or `vendored`).
    pub features: usize,
}

/// The oldest version whose requests gateprobe knows; older ones are refused.
const OLDEST: (u32, u32) = (17, 7);
/// Feature values that cannot be model names.
const RESERVED: [&str; 2] = ["disabled", "vendored"];
/// How the comment above a model starts; [`comment_names`] reads it back.
const NAME_COMMENT: &str = "# GitLab: ";

/// One mock backend standing in for a server.
struct Backend {
    name: String,
    provider: &'static str,
    authority: String,
    keyed: bool,
    models: Vec<String>,
    /// `http` or `https`, of the first endpoint.
    scheme: String,
}

impl Backend {
    /// `${env:GATEPROBE_KEY_<NAME>:-gateprobe-key-<name>}`: the mock and the model
    /// share it, so the gateway's key forwarding is checked without the real key.
    fn key(&self) -> String {
        let var = crate::text::env_name(&self.name);
        format!("${{env:GATEPROBE_KEY_{var}:-gateprobe-key-{}}}", self.name)
    }
}

/// A plain YAML scalar when that reads back as the same string, else a double-quoted
/// one (JSON's escapes are YAML's).
fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { s.to_owned() } else { quoted(s) }
}

/// A comment of one or more lines, wrapped at about 90 columns with `hang` in front
/// of the lines after the first, control characters (a newline in a name, say)
/// replaced.
fn comment(y: &mut String, indent: &str, hang: &str, text: &str) {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let body = clean.trim_start();
    let mut lines = vec![clean[..clean.len() - body.len()].to_owned()];
    for word in body.split(' ').filter(|w| !w.is_empty()) {
        let line = lines.last_mut().expect("one line at least");
        let empty = line.trim().is_empty();
        if !empty && indent.len() + line.len() + 1 + word.len() > 88 {
            lines.push(format!("{hang}{word}"));
        } else {
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    for line in lines {
        let _ = writeln!(y, "{indent}# {line}");
    }
}

/// Scenario names for the models, in order: slugs, made unique with `-2`, `-3`, ...
pub(super) fn model_names(models: &[Model]) -> Vec<String> {
    let mut taken: Vec<String> = Vec::new();
    for m in models {
        let mut base = slug(&m.name);
        if base.is_empty() {
            base = "model".into();
        }
        if RESERVED.contains(&base.as_str()) {
            base.push_str("-model");
        }
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        taken.push(name);
    }
    taken
}

/// One backend per server (host and port) and wire format, split by whether its
/// models have keys (a mock checks one key or none); all Bedrock models share one.
/// Returns the backends and each model's backend.
fn backends(models: &[Model]) -> (Vec<Backend>, Vec<usize>) {
    let mut out: Vec<Backend> = Vec::new();
    let mut of_model = Vec::with_capacity(models.len());
    for m in models {
        let (provider, authority, keyed) = match (&m.identifier.provider, &m.endpoint) {
            (Provider::Bedrock, _) | (_, None) => ("bedrock", String::new(), false),
            (Provider::Azure, Some(e)) => ("azure", e.authority.clone(), m.has_key),
            (Provider::CustomOpenai, Some(e)) => ("openai", e.authority.clone(), m.has_key),
        };
        let found = out.iter().position(|b| {
            b.provider == provider && b.authority == authority && (provider == "bedrock" || b.keyed == keyed)
        });
        let i = found.unwrap_or_else(|| {
            let base = if provider == "bedrock" {
                "bedrock".to_owned()
            } else {
                let s = slug(&authority.replace(['.', ':'], "-"));
                if s.is_empty() { "server".to_owned() } else { s }
            };
            let mut name = base.clone();
            let mut n = 2;
            while out.iter().any(|b| b.name == name) {
                name = match n {
                    2 if !keyed && provider != "bedrock" => format!("{base}-nokey"),
                    2 if provider == "azure" => format!("{base}-azure"),
                    _ => format!("{base}-{n}"),
                };
                n += 1;
            }
            out.push(Backend {
                name,
                provider,
                authority: authority.clone(),
                keyed: false,
                models: Vec::new(),
                scheme: m.endpoint.as_ref().map(|e| e.scheme.clone()).unwrap_or_default(),
            });
            out.len() - 1
        });
        let b = &mut out[i];
        b.keyed |= m.has_key;
        if !b.models.contains(&m.identifier.model) {
            b.models.push(m.identifier.model.clone());
        }
        of_model.push(i);
    }
    (out, of_model)
}

/// Writes the scenario.
pub(super) fn write(s: &Setup, opts: &WriteOptions) -> Imported {
    let names = model_names(&s.models);
    let (backends, of_model) = backends(&s.models);
    let version = s.version.as_deref().unwrap_or("of unknown version");
    let mut y = String::new();
    comment(
        &mut y,
        "",
        "",
        &format!(
            "Written by `gateprobe import gitlab` from the Duo Self-Hosted setup of {} (GitLab {version}).",
            opts.source
        ),
    );
    comment(
        &mut y,
        "",
        "",
        "Each model endpoint is a mock backend that keeps the endpoint's path, so the gateway's handling of the \
         path is what gets tested; API keys are placeholders the mocks check (no real key is needed).",
    );
    let _ = writeln!(y, "# Check that the instance still runs this setup:");
    let _ = writeln!(y, "#   gateprobe import gitlab --url {} --check THIS_FILE", opts.source);
    for (title, skipped) in [("Not imported:", true), ("Notes:", false)] {
        let notes: Vec<&Note> = s.notes.iter().filter(|n| n.skipped == skipped).collect();
        if !notes.is_empty() {
            let _ = writeln!(y, "#\n# {title}");
            for n in notes {
                comment(&mut y, "", "    ", &format!("  - {}: {}", n.item, n.text));
            }
        }
    }
    let host = Endpoint::parse(&opts.source).map(|e| e.authority).unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let name = match slug(&host.replace('.', "-")) {
        n if n.is_empty() => "gitlab".to_owned(),
        n => n,
    };
    let _ = writeln!(y, "version: 1\nname: {}", scalar(&name));
    let _ = writeln!(
        y,
        "description: {}\n",
        quoted(&format!("Duo Self-Hosted setup of {} (GitLab {version})", opts.source))
    );

    let _ = writeln!(y, "instance:");
    match s.version.as_deref().and_then(major_minor) {
        Some(v) if v < OLDEST => {
            comment(
                &mut y,
                "  ",
                "",
                &format!(
                    "The instance runs GitLab {version}; gateprobe knows the requests of {}.{} and later, the closest.",
                    OLDEST.0, OLDEST.1
                ),
            );
            let _ = writeln!(y, "  version: \"{}.{}\"", OLDEST.0, OLDEST.1);
        }
        Some((major, minor)) => {
            let _ = writeln!(y, "  version: \"{major}.{minor}\"");
        }
        None => comment(
            &mut y,
            "  ",
            "",
            "The instance's version is unknown: gateprobe plays the newest GitLab it knows.",
        ),
    }

    let _ = writeln!(y, "\ngateway:\n  kind: aigw");
    match &s.gateway_url {
        Some(u) => {
            let from = if opts.gateway_url.is_some() {
                "From --gateway-url."
            } else {
                "The instance's aiGatewayUrl."
            };
            let _ = writeln!(y, "  # {from}\n  url: {}", quoted(u));
        }
        None => {
            comment(
                &mut y,
                "  ",
                "",
                "The instance does not show its AI gateway URL (see the notes above): the gateway at $AI_GATEWAY_URL.",
            );
            let _ = writeln!(y, "  url: \"${{env:AI_GATEWAY_URL:-http://127.0.0.1:5052}}\"");
        }
    }
    let _ = writeln!(
        y,
        "  auth:\n    # A token the gateway accepts from the instance (with client auth on).\n    token: \"${{env:GATEPROBE_GATEWAY_TOKEN:-gateprobe-imported-token}}\""
    );

    let _ = writeln!(y, "\nbackends:{}", if backends.is_empty() { " {}" } else { "" });
    for b in &backends {
        if b.provider == "bedrock" {
            comment(
                &mut y,
                "  ",
                "",
                "The Bedrock runtime, which the gateway finds through its own environment: against a real AI \
                 gateway, give this backend a fixed `port:` and start the gateway with what `gateprobe mock` \
                 prints for it (see scenarios/aigw.yaml).",
            );
        } else {
            let _ = writeln!(y, "  # Stands in for {}://{}.", b.scheme, b.authority);
        }
        let models: Vec<String> = b.models.iter().map(|m| scalar(m)).collect();
        let _ = writeln!(
            y,
            "  {}:\n    provider: {}\n    models: [{}]",
            b.name,
            b.provider,
            models.join(", ")
        );
        if b.keyed {
            let _ = writeln!(y, "    api_key: {}", quoted(&b.key()));
        }
        if b.provider == "bedrock" {
            let _ = writeln!(
                y,
                "    access_key_id: \"${{env:AWS_ACCESS_KEY_ID:-AKIDGATEPROBEIMPORT}}\"\n    \
                 secret_access_key: \"${{env:AWS_SECRET_ACCESS_KEY:-gateprobe-import-placeholder-secret}}\"\n    \
                 region: \"${{env:AWS_REGION_NAME:-us-east-1}}\""
            );
        }
    }

    let _ = writeln!(
        y,
        "\nself_hosted_models:{}",
        if s.models.is_empty() { " []" } else { "" }
    );
    for ((m, name), &b) in s.models.iter().zip(&names).zip(&of_model) {
        let mut about = format!("{NAME_COMMENT}{}", quoted(&m.name));
        if let Some(id) = &m.id {
            let _ = write!(about, " ({id})");
        }
        match &m.endpoint {
            Some(e) => {
                let _ = write!(about, " at {}", e.display());
                if e.query {
                    about.push_str(" (its query left out)");
                }
            }
            None => about.push_str(", on Bedrock"),
        }
        let clean: String = about.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let _ = writeln!(y, "  {clean}");
        let _ = writeln!(y, "  - name: {}\n    family: {}", scalar(name), scalar(&m.family));
        if let Some(e) = &m.endpoint {
            let endpoint = format!("{{{{ backends.{}.url }}}}{}", backends[b].name, e.path);
            let _ = writeln!(y, "    endpoint: {}", quoted(&endpoint));
        }
        if m.has_key {
            let _ = writeln!(y, "    api_key: {}", quoted(&backends[b].key()));
        }
        let _ = writeln!(y, "    identifier: {}", scalar(&m.identifier.to_string()));
    }

    let mut set = 0;
    let _ = writeln!(
        y,
        "\nfeatures:{}",
        if s.features.is_empty() && s.unseen.is_empty() && s.left_out.is_empty() {
            " {}"
        } else {
            ""
        }
    );
    for (f, setting) in &s.features {
        let value = match setting {
            Setting::Model(m) => {
                let i = s.models.iter().position(|x| &x.name == m).unwrap_or(0);
                names.get(i).cloned().unwrap_or_default()
            }
            Setting::Disabled => "disabled".into(),
            Setting::Vendored => "vendored".into(),
            Setting::Unset => {
                let how = if f.chat_subfeature {
                    "falls back to duo_chat's model, as in GitLab"
                } else {
                    "nothing saved on the instance"
                };
                let _ = writeln!(y, "  # {}: unassigned ({how})", f.name);
                continue;
            }
        };
        set += 1;
        let _ = writeln!(y, "  {}: {}", f.name, scalar(&value));
    }
    for f in &s.left_out {
        let here = if f.chat_subfeature {
            "; left out here, so it falls back to duo_chat's model"
        } else {
            ""
        };
        let _ = writeln!(y, "  # {}: not imported (see the notes above){here}", f.name);
    }
    for f in &s.unseen {
        let _ = writeln!(
            y,
            "  # {}: not shown by the instance (a beta feature without the testing agreement, or not in its tier)",
            f.name
        );
    }
    Imported {
        yaml: y,
        notes: s.notes.clone(),
        models: s.models.len(),
        features: set,
    }
}

/// The GitLab names of a scenario's models, by scenario name, from the comments the
/// writer puts above them (`# GitLab: "Mixtral 8x7B (prod)" (gid://...)`).
pub(super) fn comment_names(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in source.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix(NAME_COMMENT) {
            pending = serde_json::Deserializer::from_str(rest)
                .into_iter::<String>()
                .next()
                .and_then(Result::ok);
        } else if let Some(value) = t.strip_prefix("- name:") {
            let value = value.trim();
            let name = if value.starts_with('"') {
                serde_json::from_str::<String>(value).ok()
            } else {
                Some(value.trim_matches('\'').to_owned())
            };
            if let (Some(original), Some(name)) = (pending.take(), name) {
                out.push((name, original));
            }
        } else if !t.starts_with('#') {
            pending = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_they_read_back_as_strings() {
        assert_eq!(
            scalar("custom_openai/mistralai/Mistral-7B"),
            "custom_openai/mistralai/Mistral-7B"
        );
        assert_eq!(scalar("anthropic.claude-v2:0"), "\"anthropic.claude-v2:0\"");
        assert_eq!(scalar("123"), "\"123\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("a b\n"), "\"a b\\n\"");
    }

    #[test]
    fn names_come_back_from_comments() {
        let src = "self_hosted_models:\n  # GitLab: \"Mixtral \\\"8x7B\\\"\" (gid://x/1) at http://h/v1\n  - name: mixtral-8x7b\n    family: mixtral\n  - name: other\n  # GitLab: \"Q\"\n  # more\n  - name: \"123\"\n";
        assert_eq!(
            comment_names(src),
            [
                ("mixtral-8x7b".to_owned(), "Mixtral \"8x7B\"".to_owned()),
                ("123".to_owned(), "Q".to_owned())
            ]
        );
    }

    #[test]
    fn comments_are_single_lines_whatever_the_text() {
        let mut y = String::new();
        comment(
            &mut y,
            "  ",
            "  ",
            "a name with\na newline and a long tail that goes on and on and on and on and on and on and on",
        );
        assert!(y.lines().all(|l| l.starts_with("  # ")), "{y}");
    }
}
