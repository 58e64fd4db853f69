//! Gateway profiles: what each kind of gateway is expected to answer when a rule is
//! exercised (a missing `/v1`, missing credentials, a disabled feature, a scripted
//! backend fault). Checks read these as data, so a gateway that differs from the AI
//! gateway is described in a small YAML file (`profiles/*.yaml`, embedded), not
//! special-cased in code. A user can write one for their own gateway, optionally
//! extending a built-in one, and name it in the scenario.

use std::path::Path;

use serde::Deserialize;

use super::ScenarioError;
use super::behavior::FaultAction;
use super::error::did_you_mean;
use super::raw::{Located, OrderedMap};
use crate::instance::Surface;

/// The built-in profiles: name and YAML text.
pub const BUILTIN: [(&str, &str); 4] = [
    ("aigw", include_str!("../../profiles/aigw.yaml")),
    ("aigw-17.7", include_str!("../../profiles/aigw-17.7.yaml")),
    ("openai", include_str!("../../profiles/openai.yaml")),
    ("litellm", include_str!("../../profiles/litellm.yaml")),
];

/// What the client must see when a rule is exercised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// The error comes as an in-band stream event (with status 200).
    pub in_band: bool,
    /// The error message, exactly.
    pub message: Option<String>,
    /// A piece the error message (or, failing that, the body) contains.
    pub message_contains: Option<String>,
    /// Whether the reply may carry no error at all, and what its content is then.
    pub content: Option<ContentRule>,
    /// `Some(true)`: the body breaks off (no end of the chunked body), which is how
    /// the client learns of the error; `Some(false)`: it ends properly.
    pub aborted: Option<bool>,
    /// The gateway version this outcome was observed on, when it differs from the
    /// profile's.
    pub observed: Option<String>,
    /// Why this outcome, though what the gateway does, is not what a client should
    /// get (an error turned into a short or empty answer): a check that sees it
    /// reports a warning saying so.
    pub weakness: Option<String>,
    /// Other outcomes the same gateway gives for the rule, each as correct as this one
    /// (`or:`): what a client sees can depend on timing, e.g. whether a proxy had
    /// already answered when its upstream broke. Alternatives have none of their own.
    pub or: Vec<Outcome>,
}

/// The content a non-error outcome carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRule {
    /// No error and empty content (a gateway that turns a broken reply into an empty one).
    Empty,
    /// No error and some content.
    NonEmpty,
}

/// Expectations for one gateway kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Name shown in reports.
    pub name: String,
    /// Where it came from: `builtin` or the file path.
    pub source: String,
    /// Free text.
    pub description: String,
    /// The gateway version (and how it was run) the outcomes were observed on.
    pub observed: String,
    expect: Vec<(String, Outcome)>,
    tolerate: Vec<(String, String)>,
}

/// The rule keys a profile may pin, besides `backend.<fault>.<surface>`.
pub const KEYS: [&str; 11] = [
    "missing_v1.chat_agent",
    "missing_v1.code_suggestions",
    "missing_v1.code_suggestions_stream",
    "missing_v1.prompt",
    "missing_v1.prompt_stream",
    "missing_v1.chat",
    "missing_v1.chat_stream",
    "missing_v1.completions",
    "client_auth.missing",
    "client_auth.wrong",
    "feature.disabled",
];

/// The surfaces `backend.<fault>.<surface>` keys name: the OpenAI front's (`chat`,
/// `chat_stream`) and the AI gateway API's.
pub const BACKEND_SURFACES: [&str; 7] = [
    "chat",
    "chat_stream",
    "chat_agent",
    "code_suggestions",
    "code_suggestions_stream",
    "prompt",
    "prompt_stream",
];

/// Rules a profile may tolerate: a gateway that breaks one gets a warning, not a
/// failure, and the profile says why.
pub const TOLERABLE: [&str; 2] = ["stream_end.after_error", "invalid_metadata.refused"];

/// Backend fault names as they appear in `backend.<fault>.<api>` keys.
pub const BACKEND_FAULTS: [&str; 14] = [
    "error_400",
    "error_401",
    "error_403",
    "error_404",
    "error_429",
    "error_500",
    "error_502",
    "error_503",
    "empty_200",
    "malformed_json",
    "malformed_sse",
    "non_sse",
    "cut",
    "stall",
];

/// The key of a scripted backend fault (`error_429`, `cut`, ...), as profiles name it.
pub fn fault_key(action: &FaultAction) -> String {
    match action {
        FaultAction::Error { status, .. } => format!("error_{status}"),
        FaultAction::SlowFirstByte(_) => "slow_first_byte".into(),
        FaultAction::Stall { .. } => "stall".into(),
        FaultAction::Cut { .. } => "cut".into(),
        FaultAction::MalformedJson => "malformed_json".into(),
        FaultAction::MalformedSse => "malformed_sse".into(),
        FaultAction::CorruptCrc => "corrupt_crc".into(),
        FaultAction::Empty200 => "empty_200".into(),
        FaultAction::NonSse => "non_sse".into(),
    }
}

fn valid_key(k: &str) -> bool {
    if KEYS.contains(&k) {
        return true;
    }
    let mut parts = k.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("backend"), Some(f), Some(surface), None)
            if BACKEND_FAULTS.contains(&f) && BACKEND_SURFACES.contains(&surface)
    )
}

fn all_keys() -> Vec<String> {
    let mut v: Vec<String> = KEYS.iter().map(|k| (*k).to_owned()).collect();
    for f in BACKEND_FAULTS {
        for surface in BACKEND_SURFACES {
            v.push(format!("backend.{f}.{surface}"));
        }
    }
    v
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Located<String>,
    #[serde(default)]
    description: Option<String>,
    /// A built-in profile whose expectations this one starts from.
    #[serde(default)]
    extends: Option<Located<String>>,
    /// The gateway version the outcomes were observed on.
    #[serde(default)]
    observed: Option<String>,
    #[serde(default)]
    expect: OrderedMap<Located<OutcomeSpec>>,
    /// Rule -> why this gateway's way of breaking it is a warning, not a failure.
    #[serde(default)]
    tolerate: OrderedMap<Located<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeSpec {
    status: u16,
    #[serde(default)]
    in_band: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_contains: Option<String>,
    #[serde(default)]
    content: Option<Located<String>>,
    #[serde(default)]
    aborted: Option<bool>,
    #[serde(default)]
    observed: Option<String>,
    #[serde(default)]
    weakness: Option<String>,
    #[serde(default)]
    or: Vec<OutcomeSpec>,
}

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Profile::parse(Path::new(&format!("profiles/{name}.yaml")), text, "builtin").ok()
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Profile, ScenarioError> {
        let text =
            crate::scenario::limits::read_text(path, "gateway profile", crate::scenario::limits::Accept::Regular)
                .map_err(|e| match e.hint {
                    Some(_) => e,
                    None => {
                        e.hint("name a built-in profile (aigw, openai, litellm) or a YAML file next to the scenario")
                    }
                })?;
        Profile::parse(path, &text, &path.display().to_string())
    }

    /// Parses profile text; errors point into it with file:line:col.
    pub fn parse(path: &Path, text: &str, source: &str) -> Result<Profile, ScenarioError> {
        crate::scenario::limits::check_size(path, "gateway profile", text)?;
        let options = crate::scenario::limits::yaml_options();
        let file: ProfileFile = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let pos = e
                .location()
                .map(|l| crate::scenario::raw::Pos {
                    line: u32::try_from(l.line()).unwrap_or(0),
                    col: u32::try_from(l.column()).unwrap_or(0),
                })
                .unwrap_or_default();
            if let Some((message, hint)) = crate::scenario::limits::breach_message(&e) {
                return ScenarioError::at(path, text, pos, message).hint(hint);
            }
            let msg = e.without_snippet().to_string();
            let first = msg.lines().next().unwrap_or_default();
            let first = first.find(" at line ").map_or(first, |i| &first[..i]);
            ScenarioError::at(path, text, pos, first.to_owned())
                .hint("a profile has `name`, optional `description`, `extends` and `observed`, `expect: {<rule key>: {status, in_band, message, message_contains, content, aborted, observed, weakness, or: [<outcome>, ...]}}` and `tolerate: {<rule>: <why>}`")
        })?;
        let err = |pos, field: String, msg: String| ScenarioError::at(path, text, pos, msg).field(field);
        let mut base_observed = String::new();
        let (mut expect, mut tolerate) = match &file.extends {
            None => (Vec::new(), Vec::new()),
            Some(base) => match Profile::builtin(&base.value) {
                Some(p) => {
                    base_observed = p.observed;
                    (p.expect, p.tolerate)
                }
                None => {
                    let names = BUILTIN.map(|(n, _)| n);
                    let e = err(
                        base.pos,
                        "extends".into(),
                        format!("no built-in profile `{}`", base.value),
                    );
                    return Err(match did_you_mean(&base.value, names) {
                        Some(h) => e.hint(h),
                        None => e.hint(format!("built-in profiles: {}", names.join(", "))),
                    });
                }
            },
        };
        for (key, spec) in &file.expect.0 {
            if !valid_key(&key.value) {
                let keys = all_keys();
                let e = err(
                    key.pos,
                    format!("expect.{}", key.value),
                    format!("unknown rule key `{}`", key.value),
                );
                return Err(match did_you_mean(&key.value, keys.iter().map(String::as_str)) {
                    Some(h) => e.hint(h),
                    None => e.hint(format!(
                        "keys: {}, or backend.<fault>.chat|chat_stream with a fault among {}",
                        KEYS.join(", "),
                        BACKEND_FAULTS.join(", ")
                    )),
                });
            }
            let outcome_of = |s: &OutcomeSpec| -> Result<Outcome, ScenarioError> {
                let content = match &s.content {
                    None => None,
                    Some(c) => match c.value.as_str() {
                        "empty" => Some(ContentRule::Empty),
                        "non_empty" => Some(ContentRule::NonEmpty),
                        other => {
                            return Err(err(
                                c.pos,
                                format!("expect.{}.content", key.value),
                                format!("unknown content rule `{other}`"),
                            )
                            .hint("write `empty` or `non_empty`"));
                        }
                    },
                };
                Ok(Outcome {
                    status: s.status,
                    in_band: s.in_band,
                    message: s.message.clone(),
                    message_contains: s.message_contains.clone(),
                    content,
                    aborted: s.aborted,
                    observed: s.observed.clone(),
                    weakness: s.weakness.clone(),
                    or: Vec::new(),
                })
            };
            let mut outcome = outcome_of(&spec.value)?;
            for alt in &spec.value.or {
                if !alt.or.is_empty() {
                    return Err(err(
                        spec.pos,
                        format!("expect.{}.or", key.value),
                        "an alternative outcome has no `or` of its own".into(),
                    )
                    .hint("list every alternative in the rule's one `or`"));
                }
                outcome.or.push(outcome_of(alt)?);
            }
            match expect.iter_mut().find(|(k, _)| *k == key.value) {
                Some(slot) => slot.1 = outcome,
                None => expect.push((key.value.clone(), outcome)),
            }
        }
        for (key, why) in &file.tolerate.0 {
            if !TOLERABLE.contains(&key.value.as_str()) {
                let e = err(
                    key.pos,
                    format!("tolerate.{}", key.value),
                    format!("`{}` is not a rule a profile can tolerate", key.value),
                );
                return Err(match did_you_mean(&key.value, TOLERABLE) {
                    Some(h) => e.hint(h),
                    None => e.hint(format!("tolerable rules: {}", TOLERABLE.join(", "))),
                });
            }
            match tolerate.iter_mut().find(|(k, _)| *k == key.value) {
                Some(slot) => slot.1 = why.value.clone(),
                None => tolerate.push((key.value.clone(), why.value.clone())),
            }
        }
        Ok(Profile {
            name: file.name.value,
            source: source.to_owned(),
            description: file.description.unwrap_or_default(),
            observed: file.observed.unwrap_or(base_observed),
            expect,
            tolerate,
        })
    }

    /// Why the profile tolerates a gateway breaking `rule`, if it does.
    pub fn tolerates(&self, rule: &str) -> Option<&str> {
        self.tolerate.iter().find(|(k, _)| k == rule).map(|(_, w)| w.as_str())
    }

    /// The expected outcome for a rule key, if the profile pins one.
    pub fn get(&self, key: &str) -> Option<&Outcome> {
        self.expect.iter().find(|(k, _)| k == key).map(|(_, o)| o)
    }

    /// The key of an upstream 404 (missing `/v1`) on a surface named as profiles name
    /// it (`chat_agent`, `prompt_stream`, `chat`, `completions`, ...).
    pub fn missing_v1_key_of(surface: &str) -> &'static str {
        KEYS.iter()
            .find(|k| k.strip_prefix("missing_v1.") == Some(surface))
            .copied()
            .unwrap_or("missing_v1.chat")
    }

    /// The key of an upstream 404 (missing `/v1`) on an AI gateway surface.
    pub fn missing_v1_key(surface: Surface) -> &'static str {
        match surface {
            Surface::ChatAgent => "missing_v1.chat_agent",
            Surface::CodeSuggestions => "missing_v1.code_suggestions",
            Surface::CodeSuggestionsStream => "missing_v1.code_suggestions_stream",
            Surface::Prompt => "missing_v1.prompt",
            Surface::PromptStream => "missing_v1.prompt_stream",
        }
    }
}

impl Outcome {
    /// Describes the outcome for the report's `expected`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}", self.status);
        if self.in_band {
            s.push_str(" with an in-band error event");
        }
        match self.content {
            Some(ContentRule::Empty) => s.push_str(" with no error and empty content"),
            Some(ContentRule::NonEmpty) => s.push_str(" with content"),
            None if !self.in_band && self.status < 400 => {}
            None if !self.in_band => s.push_str(" with an error body"),
            None => {}
        }
        if let Some(m) = &self.message {
            s.push_str(&format!(" {m:?}"));
        }
        if let Some(m) = &self.message_contains {
            s.push_str(&format!(" mentioning {m:?}"));
        }
        match self.aborted {
            Some(true) => s.push_str(", the body then breaking off"),
            Some(false) => s.push_str(", the body ending properly"),
            None => {}
        }
        for alt in &self.or {
            s.push_str(&format!("; or {}", alt.describe()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN {
            let p = Profile::builtin(name).unwrap_or_else(|| panic!("{name} does not parse"));
            assert_eq!(p.name, name);
        }
        let aigw = Profile::builtin("aigw").expect("aigw");
        assert_eq!(aigw.get("missing_v1.prompt").map(|o| o.status), Some(421));
    }

    #[test]
    fn user_profiles_extend_and_errors_point_at_the_key() {
        let p = Profile::parse(
            Path::new("mine.yaml"),
            "name: mine\nextends: litellm\nexpect:\n  client_auth.wrong: {status: 401}\n",
            "mine.yaml",
        )
        .expect("valid");
        assert_eq!(p.get("client_auth.wrong").map(|o| o.status), Some(401));
        assert!(p.get("client_auth.missing").is_some());
        let e = Profile::parse(
            Path::new("mine.yaml"),
            "name: mine\nexpect:\n  client_auth.wrnog: {status: 401}\n",
            "mine.yaml",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("mine.yaml:3:3"), "{text}");
        assert!(text.contains("did you mean `client_auth.wrong`?"), "{text}");
    }

    #[test]
    fn a_rule_may_list_alternative_outcomes_but_only_one_level() {
        let p = Profile::parse(
            Path::new("alt.yaml"),
            "name: alt\nexpect:\n  backend.cut.chat_stream: {status: 200, in_band: true, or: [{status: 500, message_contains: not completed, weakness: w}]}\n",
            "alt.yaml",
        )
        .expect("valid");
        let o = p.get("backend.cut.chat_stream").expect("rule");
        assert_eq!((o.status, o.or.len()), (200, 1));
        assert_eq!((o.or[0].status, o.or[0].weakness.as_deref()), (500, Some("w")));
        assert_eq!(
            o.describe(),
            "200 with an in-band error event; or 500 with an error body mentioning \"not completed\""
        );
        let e = Profile::parse(
            Path::new("alt.yaml"),
            "name: alt\nexpect:\n  backend.cut.chat: {status: 500, or: [{status: 502, or: [{status: 503}]}]}\n",
            "alt.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("alt.yaml:3:") && e.contains("no `or` of its own"), "{e}");
    }
}
