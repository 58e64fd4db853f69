//! The example scenarios, mock profiles and `gateprobe init` templates, built into the
//! binary: an installed `gateprobe` (from `cargo install`, the container image, a copied
//! binary) runs `gateprobe run quickstart` in any directory, without the source tree.
//!
//! A name given on the command line is looked up here only when no file of that name
//! exists, so a user's own `quickstart.yaml` always wins over the built-in one.

use std::path::Path;

/// What a built-in file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A scenario to run (`scenarios/*.yaml`).
    Scenario,
    /// A mock profile: `backends:` only, for `gateprobe mock` (`mocks/*.yaml`).
    Mock,
    /// A commented starting point for `gateprobe init` (`templates/*.yaml`).
    Template,
}

/// One file built into the binary.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    /// Short name: `quickstart`, `three-providers`, `aigw`.
    pub name: &'static str,
    /// What it is for.
    pub kind: Kind,
    /// Its path in the source tree, which is also the path reports and errors show.
    pub path: &'static str,
    /// One line saying what it is.
    pub about: &'static str,
    /// Its text.
    pub text: &'static str,
}

macro_rules! builtin {
    ($kind:ident, $name:literal, $dir:literal, $about:literal) => {
        Builtin {
            name: $name,
            kind: Kind::$kind,
            path: concat!($dir, "/", $name, ".yaml"),
            about: $about,
            text: include_str!(concat!("../../", $dir, "/", $name, ".yaml")),
        }
    };
}

/// Every built-in file, scenarios first.
pub const ALL: &[Builtin] = &[
    builtin!(
        Scenario,
        "quickstart",
        "scenarios",
        "mocks and the built-in reference gateway, no setup: the embedded default"
    ),
    builtin!(
        Scenario,
        "aigw",
        "scenarios",
        "a running GitLab AI gateway at 127.0.0.1:5052, three providers"
    ),
    builtin!(
        Scenario,
        "litellm",
        "scenarios",
        "a LiteLLM proxy that gateprobe launches (LITELLM=path/to/litellm)"
    ),
    builtin!(
        Scenario,
        "vendor-endpoint",
        "scenarios",
        "a model endpoint checked as the AI gateway uses it (kind: direct)"
    ),
    builtin!(
        Scenario,
        "model-readiness",
        "scenarios",
        "a model server checked for what each Duo feature asks of it (kind: direct)"
    ),
    builtin!(
        Scenario,
        "vendor-capacity",
        "scenarios",
        "a model endpoint's capacity for Duo-shaped load, straight (kind: direct)"
    ),
    builtin!(
        Scenario,
        "openai-front",
        "scenarios",
        "the reference gateway's OpenAI-compatible front"
    ),
    builtin!(
        Scenario,
        "capacity",
        "scenarios",
        "a capacity sweep of the built-in gateway in front of a saturating vLLM mock"
    ),
    builtin!(
        Scenario,
        "litellm-capacity",
        "scenarios",
        "a capacity sweep of a launched LiteLLM proxy"
    ),
    builtin!(
        Scenario,
        "soak",
        "scenarios",
        "10 minutes at 100 req/s through the built-in gateway"
    ),
    builtin!(Mock, "vllm", "mocks", "one vLLM server with a loaded GPU's timing"),
    builtin!(
        Mock,
        "flaky-vllm",
        "mocks",
        "a vLLM server that fails some requests on purpose"
    ),
    builtin!(
        Mock,
        "three-providers",
        "mocks",
        "vLLM, Azure OpenAI and a Bedrock runtime, instant replies"
    ),
    builtin!(
        Mock,
        "cloud-realism",
        "mocks",
        "mTLS vLLM, Azure on the GA api-version only, Bedrock with STS and a profile-only model"
    ),
    builtin!(
        Template,
        "aigw",
        "templates",
        "my AI gateway: GitLab's AI gateway (or one like it) at a URL"
    ),
    builtin!(
        Template,
        "litellm",
        "templates",
        "my LiteLLM proxy: a proxy you deploy, in front of gateprobe's mocks"
    ),
    builtin!(
        Template,
        "endpoint",
        "templates",
        "my model endpoint: an OpenAI-compatible server, no gateway in between"
    ),
];

/// The built-in file a command-line argument names, if no file of that name exists:
/// its short name (`quickstart`), or its path in the source tree
/// (`scenarios/quickstart.yaml`, so the README's commands work outside a clone).
/// Templates are found by [`template`] only.
pub fn find(arg: &Path) -> Option<&'static Builtin> {
    if arg.exists() {
        return None;
    }
    let s = arg.to_str()?;
    let s = s.strip_prefix("./").unwrap_or(s);
    ALL.iter()
        .filter(|b| b.kind != Kind::Template)
        .find(|b| b.name == s || b.path == s)
}

/// The `gateprobe init` template of this name.
pub fn template(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.kind == Kind::Template && b.name == name)
}

/// Names of one kind, for "expected one of" hints.
pub fn names(kind: Kind) -> Vec<&'static str> {
    ALL.iter().filter(|b| b.kind == kind).map(|b| b.name).collect()
}
