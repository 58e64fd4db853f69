//! `kind: openai` against the reference gateway's OpenAI front: the scenario passes as
//! shipped, every fault that concerns the front fails the checks of the rule it breaks
//! (the feature map's `serve-disabled-feature` and `no-chat-fallback` included), and the
//! report names the profile that judged each check.

mod faults;

use faults::{assert_fails_its_rule, ids, run_with};
use gateprobe::gateway::Fault;
use gateprobe::report::Status;
use gateprobe::scenario::{self, Scenario};

fn front() -> Scenario {
    faults::shipped("scenarios/openai-front.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_passes_and_names_its_profile() {
    let r = run_with(&front(), vec![]).await;
    assert_eq!(ids(&r, Status::Failed), Vec::<&str>::new());
    assert_eq!(ids(&r, Status::Error), Vec::<&str>::new());
    assert_eq!(ids(&r, Status::Skipped), Vec::<&str>::new());
    assert_eq!(r.gateway.kind, "builtin-openai");
    assert_eq!(r.gateway.profile, "openai");
    for family in [
        "routing",
        "endpoint",
        "auth",
        "feature_mapping",
        "streaming",
        "resilience",
    ] {
        assert!(
            r.checks
                .iter()
                .any(|c| c.family == family && c.status == Status::Passed),
            "no {family} check passed"
        );
    }
    let disabled = r
        .checks
        .iter()
        .find(|c| c.id == "feature_mapping.summarize_new_merge_request.disabled")
        .expect("disabled check");
    assert_eq!(disabled.profile.as_deref(), Some("openai"));
    assert!(disabled.evidence[0].backend.is_empty());
    let routed = r
        .checks
        .iter()
        .find(|c| c.id == "routing.mixtral-chat.backend")
        .expect("routing");
    assert_eq!(routed.profile, None, "universal rules name no profile");
    let fallback = r
        .checks
        .iter()
        .find(|c| c.id == "feature_mapping.duo_chat_fix_code.fallback")
        .expect("fallback");
    assert_eq!(fallback.evidence[0].backend[0].backend, "vllm-a");
    assert_eq!(fallback.evidence[0].request.path, "/v1/chat/completions");
    let completions = r
        .checks
        .iter()
        .find(|c| c.id == "streaming.code_completions")
        .expect("completions stream");
    assert_eq!(completions.evidence[0].request.path, "/v1/completions");
}

/// The checks each fault must fail on the OpenAI front.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "append-v1",
        &["endpoint.mixtral-chat.v1_path", "endpoint.mixtral-chat.missing_v1"],
    ),
    ("keep-trailing-slash", &["endpoint.mixtral-chat.trailing_slash"]),
    ("drop-api-key", &["auth.mixtral-chat.key_forwarded"]),
    ("send-foreign-key", &["auth.codegemma.no_foreign_key"]),
    ("wrong-model-name", &["routing.mixtral-chat.model"]),
    ("ignore-identifier-prefix", &["routing.mixtral-chat.model"]),
    ("accept-missing-auth", &["auth.client.missing_token"]),
    ("accept-any-token", &["auth.client.wrong_token"]),
    ("leak-api-key-in-error", &["auth.key_not_leaked"]),
    ("reuse-first-endpoint", &["routing.mixtral-large.backend"]),
    (
        "swallow-upstream-error",
        &[
            "endpoint.mixtral-chat.missing_v1",
            "resilience.flaky-429.chat",
            "resilience.flaky-500.chat_stream",
            "resilience.flaky-cut.chat_stream",
        ],
    ),
    ("broken-stream-framing", &["streaming.duo_chat"]),
    ("azure-bearer-instead-of-api-key", &["auth.gpt-azure.key_forwarded"]),
    ("azure-drop-api-version", &["endpoint.gpt-azure.api_version"]),
    ("unsigned-bedrock", &["auth.claude-bedrock.signed"]),
    ("bedrock-wrong-region", &["auth.claude-bedrock.signed"]),
    (
        "serve-disabled-feature",
        &["feature_mapping.summarize_new_merge_request.disabled"],
    ),
    (
        "no-chat-fallback",
        &[
            "feature_mapping.duo_chat_fix_code.fallback",
            "feature_mapping.duo_chat_troubleshoot_job.fallback",
        ],
    ),
    ("fake-upstream-404", &["endpoint.mixtral-chat.missing_v1"]),
    ("stringify-missing-key", &["auth.codegemma.no_foreign_key"]),
    (
        "forward-client-token",
        &["auth.mixtral-chat.key_forwarded", "auth.codegemma.no_foreign_key"],
    ),
];

/// Faults of the AI gateway API only: the front has no identifiers from the client and
/// no prompt endpoints.
const AIGW_ONLY: &[&str] = &[
    "route-empty-identifier",
    "prompts-ignore-model-metadata",
    "fallback-on-invalid-metadata",
    "cut-stream-after-error",
    // The front plans no check of the Bedrock operation: only its consequences show.
    "bedrock-wrong-operation",
];

/// Faults that must fail nothing but their own rule's checks.
const PRECISE: &[(&str, &str)] = &[
    ("keep-trailing-slash", "endpoint."),
    ("accept-missing-auth", "auth.client.missing_token"),
    ("accept-any-token", "auth.client.wrong_token"),
    (
        "serve-disabled-feature",
        "feature_mapping.summarize_new_merge_request.disabled",
    ),
    ("no-chat-fallback", "feature_mapping.duo_chat_"),
    ("broken-stream-framing", "streaming."),
    ("fake-upstream-404", "endpoint."),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_fault_fails_the_check_of_the_rule_it_breaks() {
    let s = front();
    for fault in Fault::ALL {
        if AIGW_ONLY.contains(&fault.name()) {
            continue;
        }
        let r = run_with(&s, vec![fault]).await;
        assert_fails_its_rule(fault, &r, EXPECTED, PRECISE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_profile_that_predicts_otherwise_fails_the_check_and_is_named() {
    // A profile (the user's own file) that expects LiteLLM's 400 for a wrong key: the
    // front answers 401, so the check fails and says which profile judged it.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("mine.yaml"),
        "name: mine\nextends: openai\nexpect:\n  client_auth.wrong: {status: 400}\n",
    )
    .expect("write");
    let text = std::fs::read_to_string("scenarios/openai-front.yaml")
        .expect("read")
        .replace(
            "  features_by: feature\n",
            "  features_by: feature\n  profile: mine.yaml\n",
        );
    let path = dir.path().join("s.yaml");
    let s = scenario::load_str(&path, &text, &|_| None).expect("valid");
    let r = run_with(&s, vec![]).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "auth.client.wrong_token")
        .expect("check");
    assert_eq!(c.status, Status::Failed, "{}", c.actual);
    assert_eq!(c.profile.as_deref(), Some("mine"));
    assert!(c.actual.starts_with("401"), "{}", c.actual);
    assert_eq!(
        r.gateway.profile_source,
        path.with_file_name("mine.yaml").display().to_string()
    );
    assert_eq!(ids(&r, Status::Failed), vec!["auth.client.wrong_token"]);
}
