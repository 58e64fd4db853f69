//! From YAML text to a validated [`Scenario`]: syntax and shape errors from the YAML
//! deserializer, then the semantic rules an admin would trip over (unknown features,
//! models that do not exist, bad identifiers, missing environment variables).

use std::path::Path;

use super::error::{ScenarioError, did_you_mean, yaml_lines};
use super::raw::{Located, Pos, ScenarioFile};
use super::template::{Template, interpolate, interpolate_in};
use super::{BackendConfig, BackendProvider, Scenario};

/// Carries the file and source so every error can point into it.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    source: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    secrets: Vec<(String, String)>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, pos: Pos, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.path, self.source, pos, message).field(field)
    }

    /// Resolves `${env:…}` (and, when allowed, backend holes) in a located string.
    pub(super) fn interpolate(
        &mut self,
        value: &Located<String>,
        field: &str,
        allow_backends: bool,
        secret: Option<&str>,
    ) -> Result<Template, ScenarioError> {
        let r = interpolate(&value.value, self.env, allow_backends).map_err(|e| {
            let err = self.err(self.offset_pos(value, e.offset), field, e.message);
            match e.hint {
                Some(h) => err.hint(h),
                None => err,
            }
        })?;
        // Only secret fields are redacted: an endpoint or model name read from the
        // environment is configuration, and redacting it would blind the report.
        if let Some(label) = secret
            && let Some(lit) = r.template.as_literal().filter(|s| !s.is_empty())
        {
            self.secrets.push((label.to_owned(), lit));
        }
        Ok(r.template)
    }

    /// Makes the credentials written into a URL (password, key in the query) secrets.
    pub(super) fn url_secrets(&mut self, field: &str, url: &str) {
        self.secrets.extend(crate::redact::url_secrets(field, url));
    }

    /// A string of a `launch` block: `${env:…}` now, backend and `{{ launch.* }}` holes
    /// later. Values of secret-looking variables are redacted.
    pub(super) fn launch_template(
        &mut self,
        value: &Located<String>,
        field: &str,
        secret: bool,
    ) -> Result<Template, ScenarioError> {
        let r = interpolate_in(&value.value, self.env, true, true).map_err(|e| {
            let err = self.err(self.offset_pos(value, e.offset), field, e.message);
            match e.hint {
                Some(h) => err.hint(h),
                None => err,
            }
        })?;
        if secret && let Some(lit) = r.template.as_literal().filter(|s| !s.is_empty()) {
            self.secrets.push((field.to_owned(), lit));
        }
        // A variable named as a credential holds one, wherever it is used.
        for v in r.secret_env {
            self.secrets.push((field.to_owned(), v));
        }
        Ok(r.template)
    }

    /// A timeout: a duration, and more than zero (a timeout of `0s` ends every wait
    /// at once, so nothing could ever answer in time).
    pub(super) fn timeout(&self, value: &Located<String>, field: &str) -> Result<std::time::Duration, ScenarioError> {
        let d = humantime::parse_duration(value.value.trim()).map_err(|e| {
            self.err(value.pos, field, format!("invalid duration `{}`: {e}", value.value))
                .hint("write a duration such as `10s`, `1500ms` or `2m`")
        })?;
        if d.is_zero() {
            return Err(self
                .err(
                    value.pos,
                    field,
                    format!("a timeout of `{}` ends every wait at once", value.value),
                )
                .hint("write a duration above zero, such as `10s`"));
        }
        Ok(d)
    }

    /// Makes `value` a secret, labelled `field`.
    pub(super) fn secret(&mut self, field: &str, value: &str) {
        if !value.is_empty() {
            self.secrets.push((field.to_owned(), value.to_owned()));
        }
    }

    /// Like [`Ctx::interpolate`] for fields that cannot hold backend addresses.
    pub(super) fn string(
        &mut self,
        value: &Located<String>,
        field: &str,
        secret: Option<&str>,
    ) -> Result<String, ScenarioError> {
        let t = self.interpolate(value, field, false, secret)?;
        Ok(t.as_literal().unwrap_or_default())
    }

    /// The position of byte `offset` of a located string: exact when the string stands
    /// on its line as written (after an opening quote, if any), otherwise the string's
    /// start (an escape, a multi-byte character written as one, or a line fold in between
    /// would put a column computed from the offset beyond the token or the line).
    fn offset_pos(&self, value: &Located<String>, offset: usize) -> Pos {
        let line = yaml_lines(self.source)
            .nth(value.pos.line.saturating_sub(1) as usize)
            .unwrap_or("");
        let mut rest = line.chars().skip(value.pos.col.saturating_sub(1) as usize).peekable();
        let quoted = rest.next_if(|c| matches!(c, '"' | '\'')).is_some();
        let Some(before) = value.value.get(..offset) else {
            return value.pos;
        };
        if !rest.take(before.chars().count()).eq(before.chars()) {
            return value.pos;
        }
        let cols = before.chars().count() + usize::from(quoted);
        Pos {
            line: value.pos.line,
            col: value.pos.col.saturating_add(u32::try_from(cols).unwrap_or(0)),
        }
    }

    pub(super) fn one_of<'c>(
        &self,
        value: &Located<String>,
        field: &str,
        what: &str,
        candidates: &[&'c str],
    ) -> Result<&'c str, ScenarioError> {
        if let Some(c) = candidates.iter().find(|c| **c == value.value) {
            return Ok(c);
        }
        let list = candidates
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let err = self.err(value.pos, field, format!("unknown {what} `{}`", value.value));
        Err(match did_you_mean(&value.value, candidates.iter().copied()) {
            Some(h) => err.hint(format!("{h} (expected one of {list})")),
            None => err.hint(format!("expected one of {list}")),
        })
    }
}

pub(super) fn validate(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioError> {
    let file: ScenarioFile = parse_yaml(path, source)?;
    let mut cx = Ctx {
        path,
        source,
        env,
        secrets: Vec::new(),
    };

    if let Some(v) = &file.version
        && v.value != 1
    {
        return Err(cx
            .err(v.pos, "version", format!("unsupported scenario version {}", v.value))
            .hint("this gateprobe reads version 1"));
    }

    let mut instance = match &file.instance.version {
        None => crate::instance::Instance::default(),
        Some(v) => {
            let version = cx.string(v, "instance.version", None)?;
            let shapes = crate::instance::Shapes::for_version(&version).map_err(|e| {
                cx.err(v.pos, "instance.version", e).hint(format!(
                    "gateprobe knows the requests of GitLab {}",
                    crate::instance::Shapes::ALL.map(|s| s.name()).join(" and ")
                ))
            })?;
            crate::instance::Instance {
                version,
                shapes,
                ..crate::instance::Instance::default()
            }
        }
    };
    if let Some(t) = &file.instance.gateway_timeout {
        let text = cx.string(t, "instance.gateway_timeout", None)?;
        instance.gateway_timeout = match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                return Err(cx
                    .err(
                        t.pos,
                        "instance.gateway_timeout",
                        "a timeout of 0 lets no answer through",
                    )
                    .hint("give the instance's AI gateway request timeout, e.g. `60s` (GitLab's default)"));
            }
            Err(e) => {
                return Err(cx
                    .err(
                        t.pos,
                        "instance.gateway_timeout",
                        format!("invalid duration `{text}`: {e}"),
                    )
                    .hint("write a duration such as `60s` or `2m`"));
            }
        };
    }
    let gateway = super::validate_gateway::gateway(&mut cx, &file, instance.shapes)?;
    let backends = backends(&mut cx, &file)?;
    let models = super::validate_models::models(&mut cx, &file, &backends)?;
    let features = super::validate_models::features(&cx, &file, &models)?;
    let selection = match &file.checks {
        None => super::selection::Selection::all(),
        Some(list) if list.is_empty() => super::selection::Selection::none(),
        Some(list) => {
            let mut sel = super::selection::Selection::all();
            for (i, c) in list.iter().enumerate() {
                sel.add(&c.value)
                    .map_err(|e| cx.err(c.pos, format!("checks[{i}]"), e.message).hint(e.hint))?;
            }
            sel
        }
    };
    let checks = selection.families();

    let name = file.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    });
    let load = super::validate_load::phases(
        &mut cx,
        &file.load,
        (&features, &models),
        (gateway.kind, gateway.timeout),
    )?;
    let replay = match &file.replay {
        None => Vec::new(),
        Some(r) => replay(&mut cx, r, gateway.kind)?,
    };
    Ok(Scenario {
        load,
        replay,
        path: path.to_owned(),
        name,
        instance,
        gateway,
        backends,
        models,
        features,
        checks,
        selection,
        secrets: cx.secrets,
        digest: digest(source),
    })
}

/// Largest transcript `replay:` reads.
const MAX_TRANSCRIPT: u64 = 64 * 1024 * 1024;

/// The gateway's requests to model servers in the transcript `replay:` names.
fn replay(
    cx: &mut Ctx<'_>,
    r: &Located<String>,
    kind: super::GatewayKind,
) -> Result<Vec<crate::instance::replay::ReplayRequest>, ScenarioError> {
    use std::io::Read as _;
    if kind != super::GatewayKind::Direct {
        return Err(cx
            .err(
                r.pos,
                "replay",
                "`replay` sends a gateway's requests straight to model endpoints",
            )
            .hint("use it with `gateway: {kind: direct}`"));
    }
    let name = cx.string(r, "replay", None)?;
    let mut file = cx.path.parent().unwrap_or(Path::new(".")).join(&name);
    if file.is_dir() {
        file = file.join("transcript.json");
    }
    let cannot = |why: String| {
        cx.err(r.pos, "replay", format!("cannot read `{}`: {why}", file.display()))
            .hint("name a transcript written by `gateprobe run --record DIR` (DIR/<scenario>/transcript.json), relative to the scenario")
    };
    let mut text = String::new();
    std::fs::File::open(&file)
        .and_then(|f| f.take(MAX_TRANSCRIPT + 1).read_to_string(&mut text))
        .map_err(|e| cannot(e.to_string()))?;
    if text.len() as u64 > MAX_TRANSCRIPT {
        return Err(cannot(format!("larger than {} MiB", MAX_TRANSCRIPT >> 20)));
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| cannot(format!("not JSON: {e}")))?;
    crate::instance::replay::from_transcript(&v).map_err(cannot)
}

/// The first 16 hex digits of the SHA-256 of `source`.
fn digest(source: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(source.as_bytes())[..8])
}

fn parse_yaml(path: &Path, source: &str) -> Result<ScenarioFile, ScenarioError> {
    if source.trim().is_empty() {
        return Err(
            ScenarioError::whole_file(path, "the scenario file is empty").hint("start from scenarios/quickstart.yaml")
        );
    }
    serde_saphyr::from_str_with_options::<ScenarioFile>(source, super::limits::yaml_options()).map_err(|e| {
        let loc = e.location();
        let pos = loc
            .map(|l| Pos {
                line: u32::try_from(l.line()).unwrap_or(0),
                col: u32::try_from(l.column()).unwrap_or(0),
            })
            .unwrap_or_default();
        let raw = e.without_snippet().to_string();
        // A tab is reported at the end of the scalar before it, often the line above:
        // point at the tab itself.
        let pos = if is_tab_error(&raw) {
            first_tab_from(source, pos).unwrap_or(pos)
        } else {
            pos
        };
        let (message, hint) = match super::limits::breach_message(&e) {
            Some((message, hint)) => (message, Some(hint.to_owned())),
            None => (
                clean_yaml_message(&raw),
                yaml_hint(raw.lines().next().unwrap_or_default()),
            ),
        };
        let mut err = ScenarioError::at(path, source, pos, message);
        if let Some(f) = field_path_at(source, pos) {
            err = err.field(f);
        }
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    })
}

/// The YAML library's ways of saying a tab stands where indentation is.
fn is_tab_error(message: &str) -> bool {
    message.contains("found a tab") || message.contains("tabs disallowed")
}

/// The first tab at or after `pos`, as a position.
fn first_tab_from(source: &str, pos: Pos) -> Option<Pos> {
    let start = pos.line.max(1) as usize - 1;
    // Lines as the error display counts them (a lone CR ends one too).
    yaml_lines(source).enumerate().skip(start).find_map(|(i, line)| {
        let col = line.chars().position(|c| c == '\t')?;
        Some(Pos {
            line: u32::try_from(i + 1).ok()?,
            col: u32::try_from(col + 1).ok()?,
        })
    })
}

/// Drops the position suffix the YAML library appends (we print our own), and says
/// the library's terse shape errors in the scenario's words.
fn clean_yaml_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    if first.starts_with("expected sequence start") {
        return "expected a list here, got a single value".into();
    }
    if first.starts_with("expected mapping start") {
        return "expected a mapping (`key: value` lines) here, got a single value".into();
    }
    if is_tab_error(first) {
        return "a tab in the indentation: YAML indents with spaces only".into();
    }
    if let Some(kind) = first.strip_prefix("invalid ") {
        let kind = kind.split_whitespace().next().unwrap_or_default();
        if matches!(kind, "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64") {
            return "expected a whole number here".into();
        }
        if matches!(kind, "f32" | "f64") {
            return "expected a number here".into();
        }
    }
    let cut = first.find(" at line ").map_or(first, |i| &first[..i]);
    let cut = cut.split_once(", expected one of ").map_or(cut, |(m, _)| m);
    let cut = cut.split_once(" (defined").map_or(cut, |(m, _)| m);
    cut.trim_end_matches('.').to_owned()
}

/// A hint for the common shape errors: misspelled keys get "did you mean".
fn yaml_hint(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (got, tail) = rest.split_once('`')?;
        let list = tail.split_once("expected one of ").map(|(_, l)| l).unwrap_or("");
        let list = list.split_once(" at line ").map_or(list, |(l, _)| l);
        let expected: Vec<&str> = list
            .split(", ")
            .map(|c| c.trim_matches('`'))
            .filter(|c| !c.is_empty())
            .collect();
        let allowed = expected.join(", ");
        return Some(match did_you_mean(got, expected.iter().copied()) {
            Some(h) => format!("{h} (allowed here: {allowed})"),
            None => format!("allowed here: {allowed}"),
        });
    }
    if message.starts_with("expected sequence start") {
        return Some("write a list: `[a, b]`, or one `- a` line per item (a single item is `[a]`)".into());
    }
    if message.starts_with("expected mapping start") {
        return Some("write `key: value` lines indented under this key, or `{key: value}`".into());
    }
    if is_tab_error(message) {
        return Some("replace the tab with spaces".into());
    }
    if message.starts_with("invalid u") || message.starts_with("invalid i") || message.starts_with("invalid f") {
        return Some("write the number without quotes or unit (`version: 1`, `port: 18001`, `rate: 20`)".into());
    }
    if message.starts_with("missing field") {
        return Some("see `gateprobe schema` or scenarios/quickstart.yaml for the format".into());
    }
    if message.starts_with("unclosed")
        || message.contains("while parsing")
        || message.contains("did not find")
        || message.contains("not allowed in this context")
    {
        return Some("check the brackets, quotes and indentation on this line and the lines before it".into());
    }
    None
}

/// The dotted field path of the node at `pos`, read off the block structure of the
/// source (YAML errors carry a position but no path).
fn field_path_at(source: &str, pos: Pos) -> Option<String> {
    let lines: Vec<&str> = yaml_lines(source).collect();
    let line = lines.get(pos.line.checked_sub(1)? as usize)?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let key_of = |l: &str| -> Option<String> {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        // A key's colon is followed by a space or the line's end (`http://x` is no key).
        let (colon, _) = t
            .char_indices()
            .find(|&(i, c)| c == ':' && t[i + 1..].chars().next().is_none_or(char::is_whitespace))?;
        let k = t[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
        (!k.is_empty() && !k.contains(' ') && !k.starts_with(['{', '[', '#'])).then(|| k.to_owned())
    };
    // Index of the sequence item whose dash stands at `dash` on line `at`.
    let item_index = |at: usize, dash: usize| -> usize {
        let mut i = 0;
        for l in lines[..at].iter().rev() {
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let ind = indent_of(l);
            if ind < dash {
                break;
            }
            if ind == dash && l.trim_start().starts_with("- ") {
                i += 1;
            }
        }
        i
    };
    let mut parts: Vec<String> = Vec::new();
    let col = (pos.col as usize).saturating_sub(1);
    let own = line.get(col..).unwrap_or("");
    let mut indent = col;
    if let Some(k) = key_of(own) {
        parts.push(k);
        // A key inside a flow mapping (`gateway: {kind: x}`): the line's own key holds it.
        if let Some(parent) = key_of(line.get(..col).unwrap_or("")) {
            parts.push(parent);
            indent = indent_of(line) + if line.trim_start().starts_with("- ") { 2 } else { 0 };
        }
    } else if let Some(k) = key_of(line.get(..col).unwrap_or("")) {
        // The node is a value: its key starts the line, so walk up from the key.
        parts.push(k);
        indent = indent_of(line) + if line.trim_start().starts_with("- ") { 2 } else { 0 };
    }
    let at = pos.line as usize - 1;
    if line.trim_start().starts_with("- ") && indent_of(line) < col {
        let dash = indent_of(line);
        parts.push(format!("[{}]", item_index(at, dash)));
        indent = dash;
    }
    for (n, l) in lines[..at].iter().enumerate().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let ind = indent_of(l);
        if ind >= indent {
            continue;
        }
        let t = l.trim_start();
        if let Some(inner) = t.strip_prefix("- ") {
            // `- key:` whose nested block holds the node.
            if indent > ind + 2
                && let Some(k) = key_of(inner)
            {
                parts.push(k);
            }
            parts.push(format!("[{}]", item_index(n, ind)));
        } else if let Some(k) = key_of(t) {
            parts.push(k);
        }
        indent = ind;
        if ind == 0 {
            break;
        }
    }
    if parts.is_empty() {
        return None;
    }
    let mut out = String::new();
    for p in parts.iter().rev() {
        if !out.is_empty() && !p.starts_with('[') {
            out.push('.');
        }
        out.push_str(p);
    }
    Some(out)
}

fn backends(cx: &mut Ctx<'_>, file: &ScenarioFile) -> Result<Vec<BackendConfig>, ScenarioError> {
    let mut out = Vec::new();
    for (name, b) in &file.backends.0 {
        let field = format!("backends.{}", name.value);
        if !valid_name(&name.value) {
            return Err(cx
                .err(
                    name.pos,
                    &field,
                    format!("`{}` is not a valid backend name", name.value),
                )
                .hint("use letters, digits, `-` and `_`"));
        }
        let provider = match cx.one_of(
            &b.provider,
            &format!("{field}.provider"),
            "backend provider",
            &["openai", "azure", "bedrock"],
        )? {
            "azure" => BackendProvider::Azure,
            "bedrock" => BackendProvider::Bedrock,
            _ => BackendProvider::Openai,
        };
        if b.models.is_empty() {
            return Err(cx
                .err(
                    name.pos,
                    format!("{field}.models"),
                    "a backend must serve at least one model",
                )
                .hint("list the served model names, e.g. `models: [Mixtral-8x7B-Instruct-v0.1]`"));
        }
        let api_key = b
            .api_key
            .as_ref()
            .map(|k| cx.string(k, &format!("{field}.api_key"), Some(&format!("{field}.api_key"))))
            .transpose()?
            .filter(|k| !k.is_empty());
        let aws = super::validate_mock::aws(cx, &field, provider, b)?;
        let timing = super::validate_mock::timing(cx, &field, b.timing.as_ref())?;
        let faults = super::validate_mock::faults(cx, &field, &b.faults)?;
        let personality = super::validate_mock::personality(cx, &field, provider, b)?;
        let profile_only = super::validate_cloud::profile_only(cx, &field, provider, b)?;
        let api_versions = super::validate_cloud::api_versions(cx, &field, provider, b)?;
        let tls = super::validate_cloud::tls(cx, &field, b)?;
        out.push(BackendConfig {
            personality,
            profile_only,
            api_versions,
            tls,
            name: name.value.clone(),
            provider,
            aws,
            models: b
                .models
                .iter()
                .enumerate()
                .map(|(i, m)| cx.string(m, &format!("{field}.models[{i}]"), None))
                .collect::<Result<_, _>>()?,
            api_key,
            timing,
            faults,
            port: match &b.port {
                Some(p) if p.value == 0 => {
                    return Err(cx
                        .err(p.pos, format!("{field}.port"), "port 0 is not a fixed port")
                        .hint("leave `port` out for any free port, or give one such as 18001"));
                }
                Some(p) => Some(p.value),
                None => None,
            },
        });
    }
    Ok(out)
}

/// Feature values that are not model names.
pub(super) const RESERVED_TARGETS: [&str; 2] = ["disabled", "vendored"];

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Target;

    fn path_at(src: &str, line: u32, col: u32) -> Option<String> {
        field_path_at(src, Pos { line, col })
    }

    #[test]
    fn field_paths_follow_block_structure() {
        let src = "gateway:\n  kind: builtin\n  auth:\n    tokn: x\nself_hosted_models:\n  - name: a\n    famly: b\n  - nme: c\n";
        assert_eq!(path_at(src, 2, 3).as_deref(), Some("gateway.kind"));
        assert_eq!(path_at(src, 4, 5).as_deref(), Some("gateway.auth.tokn"));
        assert_eq!(path_at(src, 7, 5).as_deref(), Some("self_hosted_models[0].famly"));
        assert_eq!(path_at(src, 8, 5).as_deref(), Some("self_hosted_models[1].nme"));
        assert_eq!(path_at(src, 1, 1).as_deref(), Some("gateway"));
        assert_eq!(
            path_at(src, 2, 9).as_deref(),
            Some("gateway.kind"),
            "a value's path is its key's"
        );
        let flow = "a: 1\nself_hosted_models: &m\n  - {name: a}\nfeatures: *m\n";
        assert_eq!(path_at(flow, 4, 11).as_deref(), Some("features"));
    }

    #[test]
    fn reference_errors_point_at_the_reference_or_the_value() {
        let at = |src: &str| {
            crate::scenario::load_str(Path::new("s.yaml"), src, &|_| None)
                .expect_err("refused")
                .pos
                .map(|p| (p.line, p.col))
        };
        let head = "version: 1\ngateway:\n  kind: builtin\n  auth:\n";
        assert_eq!(
            at(&format!("{head}    token: \"ab ${{env:MISSING}}\"\n")),
            Some((5, 16))
        );
        assert_eq!(at(&format!("{head}    token: ab ${{env:MISSING}}\n")), Some((5, 15)));
        assert_eq!(
            at(&format!("{head}    token: \"éé ${{env:MISSING}}\"\n")),
            Some((5, 16))
        );
        // An escape, a fold or a block scalar in front: the value's start.
        assert_eq!(
            at(&format!("{head}    token: \"\\u00e9 ${{env:MISSING}}\"\n")),
            Some((5, 12))
        );
        assert_eq!(
            at(&format!("{head}    token: \"aaaa\n      ${{env:MISSING}}\"\n")),
            Some((5, 12))
        );
        let block = at(&format!("{head}    token: |\n      aaaa\n      ${{env:MISSING}}\n"));
        assert!(matches!(block, Some((5 | 6, _))), "{block:?}");
    }

    #[test]
    fn field_paths_see_flow_mappings_and_skip_urls() {
        let src =
            "version: 1\ngateway: {kind: builtin, tmeout: 1s}\nself_hosted_models:\n  - endpoint: \"http://x:1/v1\"\n";
        assert_eq!(path_at(src, 2, 11).as_deref(), Some("gateway.kind"));
        assert_eq!(path_at(src, 2, 26).as_deref(), Some("gateway.tmeout"));
        assert_eq!(path_at(src, 4, 15).as_deref(), Some("self_hosted_models[0].endpoint"));
    }

    #[test]
    fn vendored_features_send_nothing_and_do_not_fall_back() {
        let src = "version: 1\nbackends: {v: {provider: openai, models: [m]}}\n\
            self_hosted_models:\n  - {name: m, family: mistral, endpoint: \"{{ backends.v.url }}/v1\", identifier: custom_openai/m}\n\
            features: {duo_chat: m, duo_chat_explain_code: vendored, code_generations: vendored}\n";
        let s = crate::scenario::load_str(Path::new("s.yaml"), src, &|_| None).expect("valid");
        let target = |name: &str| s.features.iter().find(|f| f.feature.name == name).map(|f| f.target);
        assert_eq!(target("duo_chat_explain_code"), Some(Target::Vendored));
        assert_eq!(target("code_generations"), Some(Target::Vendored));
        assert_eq!(target("duo_chat_fix_code"), Some(Target::Fallback(0)));
        let plan = crate::check::compile(&s);
        let check = plan
            .checks
            .iter()
            .find(|c| c.id.to_string() == "feature_mapping.duo_chat_explain_code.vendored")
            .expect("a vendored check");
        assert!(check.probes.is_empty());
        assert_eq!(
            check.skip.as_deref(),
            Some("GitLab serves it with its own models; nothing self-hosted to check")
        );
        assert!(
            !plan
                .checks
                .iter()
                .map(|c| c.id.to_string())
                .any(|id| id.starts_with("feature_mapping.duo_chat_explain_code.") && !id.ends_with(".vendored"))
        );
        let named = src.replace("name: m,", "name: vendored,");
        let e = crate::scenario::load_str(Path::new("s.yaml"), &named, &|_| None).expect_err("reserved");
        assert!(e.to_string().contains("`vendored` are reserved"), "{e}");
    }

    #[test]
    fn credentials_in_urls_become_secrets() {
        let src = "version: 1\ngateway: {kind: aigw, url: \"http://svc:pw-in-url@gw:5052\"}\n\
            self_hosted_models:\n  - name: m\n    family: mistral\n    identifier: custom_openai/m\n\
            \x20   endpoint: \"{{ backends.v.url }}/v1?api-key=key-in-url\"\nfeatures: {duo_chat: m}\n\
            backends: {v: {provider: openai, models: [m]}}\n";
        let s = crate::scenario::load_str(Path::new("s.yaml"), src, &|_| None).expect("valid");
        let values: Vec<&str> = s.secrets.iter().map(|(_, v)| v.as_str()).collect();
        assert!(
            values.contains(&"pw-in-url") && values.contains(&"key-in-url"),
            "{:?}",
            s.secrets
        );
    }

    #[test]
    fn credential_headers_and_launch_urls_become_secrets() {
        let src = "version: 1\ngateway:\n  kind: openai\n  auth:\n    token: tok-12345678\n\
            \x20   headers: {X-Api-Key: header-key-1234, X-Trace: trace-visible}\n  launch:\n\
            \x20   command: [proxy, --db, \"postgres://u:db-pass-99@db:5432/x\", --port, \"{{ launch.port }}\"]\n\
            \x20   env: {DATABASE_URL: \"postgres://u:env-pass-77@db/x\"}\n\
            backends: {v: {provider: openai, models: [m]}}\n\
            self_hosted_models:\n  - {name: m, family: mistral, endpoint: \"{{ backends.v.url }}/v1\", identifier: custom_openai/m}\n";
        let s = crate::scenario::load_str(Path::new("s.yaml"), src, &|_| None).expect("valid");
        let values: Vec<&str> = s.secrets.iter().map(|(_, v)| v.as_str()).collect();
        for secret in ["header-key-1234", "db-pass-99", "env-pass-77", "tok-12345678"] {
            assert!(values.contains(&secret), "{secret}: {:?}", s.secrets);
        }
        assert!(!values.contains(&"trace-visible"));
    }

    #[test]
    fn credentials_on_a_launch_command_line_and_in_credential_named_variables_become_secrets() {
        let src = "version: 1\ngateway:\n  kind: openai\n  auth: {token: tok-12345678}\n  launch:\n\
            \x20   command: [env, DB_PASS=assign-pass-1, proxy, --master-key, flag-key-22, --api-key=eq-key-333,\
            \x20\"${env:HF_PAT}\", --port, \"{{ launch.port }}\", --host, 127.0.0.1]\n\
            \x20   env: {DB_PASS: env-db-pass, AUTH_HEADER: env-auth-h, CREDENTIALS: env-creds, HF_PAT: env-hf-pat, PLAIN: visible-1}\n\
            backends: {v: {provider: openai, models: [m]}}\n\
            self_hosted_models:\n  - {name: m, family: mistral, endpoint: \"{{ backends.v.url }}/v1\", identifier: custom_openai/m}\n";
        let env = |n: &str| (n == "HF_PAT").then(|| "hf-from-environment".to_owned());
        let s = crate::scenario::load_str(Path::new("s.yaml"), src, &env).expect("valid");
        let values: Vec<&str> = s.secrets.iter().map(|(_, v)| v.as_str()).collect();
        for secret in [
            "assign-pass-1",
            "flag-key-22",
            "eq-key-333",
            "hf-from-environment",
            "env-db-pass",
            "env-auth-h",
            "env-creds",
            "env-hf-pat",
        ] {
            assert!(values.contains(&secret), "{secret}: {:?}", s.secrets);
        }
        for visible in ["visible-1", "127.0.0.1", "proxy", "--port"] {
            assert!(!values.contains(&visible), "{visible}: {:?}", s.secrets);
        }
    }
}
