//! A real LiteLLM proxy in the loop: `scenarios/litellm.yaml` launches it against
//! gateprobe's mocks with a config written by the export code, and every check passes;
//! deliberately wrong configs (an `api_base` without `/v1`, wrong backend keys, swapped
//! backends, the wrong AWS region) fail the checks of exactly those rules.
//!
//! Needs the proxy: `$LITELLM`, or `litellm` on PATH (`.ci/run` installs it). The tests
//! are `#[ignore]`d with that reason, so a plain `cargo test` lists them as ignored
//! rather than passing them unrun; `cargo test -- --include-ignored` runs them, and
//! then fails where the proxy is missing.

use std::path::{Path, PathBuf};

use gateprobe::export::ConfigFault;
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{self, Scenario};
use tokio_util::sync::CancellationToken;

/// One proxy at a time: each boots in ~10 s of CPU on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn litellm() -> Option<String> {
    if let Some(l) = std::env::var("LITELLM").ok().filter(|l| !l.is_empty()) {
        return Some(l);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("litellm"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn scenario(bin: &str) -> Scenario {
    let path = Path::new("scenarios/litellm.yaml");
    let text = std::fs::read_to_string(path).expect("read");
    let bin = bin.to_owned();
    scenario::load_str(path, &text, &move |n| (n == "LITELLM").then(|| bin.clone())).expect("valid")
}

async fn run_with(s: &Scenario, dir: PathBuf, config_faults: Vec<ConfigFault>) -> RunReport {
    let opts = RunOptions {
        work_dir: Some(dir),
        config_faults,
        ..RunOptions::default()
    };
    run::run(s, &opts, &CancellationToken::new()).await
}

fn ids(r: &RunReport, status: Status) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.as_str())
        .collect()
}

macro_rules! need_litellm {
    () => {
        litellm().expect(
            "LiteLLM is not installed: set LITELLM=path/to/litellm or put `litellm` on PATH (.ci/run installs it)",
        )
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a LiteLLM proxy: LITELLM=path/to/litellm cargo test -- --include-ignored (.ci/run does)"]
async fn the_suite_passes_against_a_real_litellm_proxy() {
    let bin = need_litellm!();
    let _one = ONE_AT_A_TIME.lock().await;
    let s = scenario(&bin);
    let dir = tempfile::tempdir().expect("tmp");
    let r = run_with(&s, dir.path().to_owned(), vec![]).await;
    let bad: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| format!("{} {:?}: {}", c.id, c.status, c.actual))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\naborted: {:?}", r.aborted);
    assert_eq!(r.gateway.profile, "litellm");
    for family in [
        "routing",
        "endpoint",
        "auth",
        "feature_mapping",
        "streaming",
        "resilience",
    ] {
        assert!(r.checks.iter().any(|c| c.family == family), "no {family} checks");
    }
    // At least five scripted backend faults, plain and streamed, judged by the profile.
    let faults = r
        .checks
        .iter()
        .filter(|c| c.family == "resilience" && c.status == Status::Passed)
        .filter(|c| c.profile.as_deref() == Some("litellm") && !c.evidence[0].backend.is_empty())
        .count();
    assert!(faults >= 10, "{faults} resilience checks");
    for id in [
        "routing.gpt-azure.model",
        "auth.claude-bedrock.signed",
        "endpoint.mixtral-chat.missing_v1",
        "auth.client.wrong_token",
        "feature_mapping.duo_chat_fix_code.fallback",
        "feature_mapping.summarize_new_merge_request.disabled",
        "streaming.code_completions",
    ] {
        assert!(ids(&r, Status::Passed).contains(&id), "{id} did not pass");
    }
    let l = r.gateway.launched.as_ref().expect("launched");
    assert!(
        l.exit.as_deref().unwrap_or("").starts_with("stopped by gateprobe"),
        "{:?}",
        l.exit
    );
    // No secret in anything written: report, config, the proxy's own output.
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let p = entry.expect("entry").path();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for (label, secret) in &s.secrets {
            assert!(!text.contains(secret.as_str()), "{label} leaked into {}", p.display());
        }
    }
}

/// Config fault -> checks that must fail, and a prefix no failure may have.
const WRONG_CONFIGS: &[(ConfigFault, &[&str], &[&str])] = &[
    (
        ConfigFault::StripV1,
        &[
            "endpoint.mixtral-chat.v1_path",
            "endpoint.mixtral-large.v1_path",
            "endpoint.codegemma.v1_path",
            "feature_mapping.duo_chat.mapped",
        ],
        &["auth.", "routing.gpt-azure", "routing.claude-bedrock"],
    ),
    (
        ConfigFault::WrongBackendKey,
        &[
            "auth.mixtral-chat.key_forwarded",
            "auth.mixtral-large.key_forwarded",
            "auth.gpt-azure.key_forwarded",
        ],
        &[
            "auth.codegemma",
            "endpoint.codegemma",
            "auth.claude-bedrock",
            "auth.client",
        ],
    ),
    (
        ConfigFault::SwapBackends,
        &[
            "routing.mixtral-chat.backend",
            "routing.mixtral-large.backend",
            "routing.codegemma.backend",
        ],
        &["routing.gpt-azure", "routing.claude-bedrock", "auth.client"],
    ),
    (
        ConfigFault::WrongAwsRegion,
        &["auth.mixtral-bedrock.signed", "auth.claude-bedrock.signed"],
        &["routing.mixtral-chat", "auth.mixtral-chat", "endpoint.", "auth.client"],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a LiteLLM proxy: LITELLM=path/to/litellm cargo test -- --include-ignored (.ci/run does)"]
async fn deliberately_wrong_litellm_configs_fail_the_right_checks() {
    let bin = need_litellm!();
    let _one = ONE_AT_A_TIME.lock().await;
    let s = scenario(&bin);
    for (fault, must_fail, must_not) in WRONG_CONFIGS {
        let dir = tempfile::tempdir().expect("tmp");
        let r = run_with(&s, dir.path().to_owned(), vec![*fault]).await;
        assert!(r.aborted.is_none(), "{}: {:?}", fault.name(), r.aborted);
        let failed = ids(&r, Status::Failed);
        assert_eq!(ids(&r, Status::Error), Vec::<&str>::new(), "{}: errors", fault.name());
        for id in *must_fail {
            assert!(
                failed.contains(id),
                "{}: {id} did not fail; failed: {failed:?}",
                fault.name()
            );
        }
        for f in &failed {
            assert!(
                !must_not.iter().any(|p| f.starts_with(p)),
                "{}: {f} should not fail; failed: {failed:?}",
                fault.name()
            );
        }
        let config = std::fs::read_to_string(dir.path().join("litellm-config.yaml")).expect("config");
        assert!(config.contains(&format!("DELIBERATELY WRONG ({})", fault.name())));
    }
}
