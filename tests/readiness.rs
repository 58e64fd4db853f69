//! Model-readiness checks (`kind: direct`): a mock vLLM set up as GitLab's
//! documentation asks passes them all; each mock personality that reproduces a real
//! server's misconfiguration fails exactly the check that guards against it, with the
//! server's own error text in the evidence.

use std::path::Path;

use gateprobe::report::{CheckResult, RunReport, Status};
use gateprobe::run::{self, RunOptions};
use tokio_util::sync::CancellationToken;

fn scenario(backend_extra: &str, features: &str, instance: &str) -> String {
    format!(
        r#"version: 1
name: readiness
{instance}
gateway: {{kind: direct, timeout: 10s}}
checks: [readiness]
backends:
  vllm:
    provider: openai
    models: [Mixtral-8x7B-Instruct-v0.1]
    api_key: sk-ready-1
{backend_extra}
self_hosted_models:
  - name: m
    family: mixtral
    endpoint: "{{{{ backends.vllm.url }}}}/v1"
    api_key: sk-ready-1
    identifier: custom_openai/Mixtral-8x7B-Instruct-v0.1
{features}
"#
    )
}

const ALL_FEATURES: &str = "features: {duo_chat: m, code_completions: m, code_generations: m}";

async fn run_text(text: &str) -> RunReport {
    let s =
        gateprobe::scenario::load_str(Path::new("readiness.yaml"), text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    run::run(&s, &RunOptions::default(), &CancellationToken::new()).await
}

fn check<'r>(r: &'r RunReport, rule: &str) -> &'r CheckResult {
    let id = format!("readiness.m.{rule}");
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", r.checks.iter().map(|c| &c.id).collect::<Vec<_>>()))
}

fn not_passed(r: &RunReport) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| c.id.trim_start_matches("readiness.m.").to_owned())
        .collect()
}

/// The evidence's reply bodies, joined.
fn bodies(c: &CheckResult) -> String {
    c.evidence
        .iter()
        .filter_map(|e| e.response.as_ref())
        .map(|r| r.body.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_set_up_server_is_ready() {
    let r = run_text(&scenario("", ALL_FEATURES, "")).await;
    assert_eq!(not_passed(&r), Vec::<String>::new(), "{:#?}", r.checks);
    assert_eq!(r.checks.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_readiness_scenario_passes_on_the_mock() {
    let path = Path::new("scenarios/model-readiness.yaml");
    let s =
        gateprobe::scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid");
    let r = run::run(&s, &RunOptions::default(), &CancellationToken::new()).await;
    assert_eq!(r.summary.failed + r.summary.errors, 0, "{:#?}", r.checks);
    assert!(r.checks.iter().any(|c| c.family == "readiness"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_personality_fails_the_check_that_guards_against_it() {
    let cases = [
        (
            "    personality: [strict_roles]",
            "roles",
            "Conversation roles must alternate user/assistant/user/assistant/...",
        ),
        (
            "    max_model_len: 8192",
            "context",
            "This model's maximum context length is 8192 tokens. However, you requested 11808 tokens",
        ),
        (
            "    personality: [no_tool_parser]",
            "tools",
            "\\\"auto\\\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        ),
        ("    personality: [reasoning]", "answer", "\"reasoning_content\""),
        ("    personality: [ignore_limits]", "limits", "\"completion_tokens\""),
    ];
    for (extra, rule, says) in cases {
        let r = run_text(&scenario(extra, ALL_FEATURES, "")).await;
        assert_eq!(not_passed(&r), vec![rule.to_owned()], "{extra}: {:#?}", r.checks);
        let c = check(&r, rule);
        assert_eq!(c.status, Status::Failed);
        assert!(bodies(c).contains(says), "{extra}: evidence {}", bodies(c));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_the_features_it_breaks() {
    let r = run_text(&scenario("    max_model_len: 8192", ALL_FEATURES, "")).await;
    let c = check(&r, "context");
    assert!(
        c.actual.contains("over a 8192-token window: duo_chat (11808)") && !c.actual.contains("code_generations"),
        "{}",
        c.actual
    );
    let r = run_text(&scenario("    personality: [strict_roles]", ALL_FEATURES, "")).await;
    let c = check(&r, "roles");
    assert!(c.actual.contains("[system, user] refused"), "{}", c.actual);
    assert!(c.actual.contains("code_completions"), "{}", c.actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_ready_depends_on_the_features_and_the_instance_version() {
    // A reasoning model answers within Chat's budget, not within code completions'.
    let chat_only = "features: {duo_chat: m}";
    let r = run_text(&scenario("    personality: [reasoning]", chat_only, "")).await;
    assert_eq!(
        check(&r, "answer").status,
        Status::Passed,
        "{}",
        check(&r, "answer").actual
    );
    // An 8192-token window holds GitLab 17.7's Chat (4096 max_tokens), not 18.9's.
    let r = run_text(&scenario(
        "    max_model_len: 8192",
        chat_only,
        "instance: {version: \"17.7\"}",
    ))
    .await;
    assert_eq!(
        check(&r, "context").status,
        Status::Passed,
        "{}",
        check(&r, "context").actual
    );
    let r = run_text(&scenario("    max_model_len: 8192", chat_only, "")).await;
    assert_eq!(check(&r, "context").status, Status::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_under_another_name_fails_served_name() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // A server that serves the model under another name than the identifier's.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!(
            {"object": "list", "data": [{"id": "mixtral-served", "object": "model", "max_model_len": 32768}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!(
            {"id": "x", "object": "chat.completion", "model": "mixtral-served",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})))
        .mount(&server)
        .await;
    let text = scenario("", ALL_FEATURES, "").replace("{{ backends.vllm.url }}", &server.uri());
    let r = run_text(&text).await;
    let c = check(&r, "served_name");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("/models lists mixtral-served"), "{}", c.actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_models_are_listed_as_skipped() {
    let text = r#"version: 1
name: readiness-bedrock
gateway: {kind: direct, timeout: 10s}
checks: [readiness]
backends:
  br:
    provider: bedrock
    models: [mistral.mixtral-8x7b-instruct-v0:1]
    access_key_id: AKIDREADY
    secret_access_key: ready-secret-0123456789
    region: us-east-1
self_hosted_models:
  - name: m
    family: mixtral
    identifier: bedrock/mistral.mixtral-8x7b-instruct-v0:1
"#;
    let r = run_text(text).await;
    assert_eq!(r.checks.len(), 6);
    assert!(
        r.checks
            .iter()
            .all(|c| c.status == Status::Skipped && c.actual.contains("Bedrock"))
    );
}

#[test]
fn personalities_are_validated() {
    let text = scenario("    personality: [strict_role]", ALL_FEATURES, "");
    let e = gateprobe::scenario::load_str(Path::new("r.yaml"), &text, &|_| None)
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("unknown personality `strict_role`") && e.contains("strict_roles"),
        "{e}"
    );
    let text = scenario("    max_model_len: 100", ALL_FEATURES, "");
    let e = gateprobe::scenario::load_str(Path::new("r.yaml"), &text, &|_| None)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("r.yaml:") && e.contains("max_model_len"), "{e}");
}

/// The AI gateway's own requests, recorded from GitLab's real gateway (18.x prompts,
/// Mixtral family): Chat sends `[system, user, assistant]` with `max_tokens` 8192.
const REPLAY: &str = "replay: tests/fixtures/transcripts/aigw-474164f4-features-vllm";

fn replays(r: &RunReport) -> Vec<(&str, Status)> {
    r.checks
        .iter()
        .filter(|c| c.id.starts_with("readiness.m.replay."))
        .map(|c| (c.id.trim_start_matches("readiness.m.replay."), c.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_requests_replay_against_the_server() {
    let r = run_text(&scenario("", ALL_FEATURES, REPLAY)).await;
    let ids: Vec<&str> = replays(&r).iter().map(|(id, _)| *id).collect();
    for f in ["code_completions", "code_generations", "duo_chat"] {
        assert!(ids.contains(&f), "no replay.{f} in {ids:?}");
    }
    assert_eq!(not_passed(&r), Vec::<String>::new(), "{:#?}", r.checks);

    // A chat template that refuses a system turn refuses every recorded request.
    let r = run_text(&scenario("    personality: [strict_roles]", ALL_FEATURES, REPLAY)).await;
    let c = check(&r, "replay.duo_chat");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("[system, user, assistant]"), "{}", c.actual);
    assert!(bodies(c).contains("Conversation roles must alternate"), "{}", bodies(c));

    // An 8192-token window takes the completion request, not Chat's 8192 max_tokens.
    let r = run_text(&scenario("    max_model_len: 8192", ALL_FEATURES, REPLAY)).await;
    let by_id = replays(&r);
    assert!(by_id.contains(&("code_completions", Status::Passed)), "{by_id:?}");
    assert!(by_id.contains(&("duo_chat", Status::Failed)), "{by_id:?}");
    let c = check(&r, "replay.duo_chat");
    assert!(c.actual.contains("max_tokens 8192, streamed"), "{}", c.actual);
    assert!(
        bodies(c).contains("maximum context length is 8192 tokens"),
        "{}",
        bodies(c)
    );
}

#[test]
fn replay_is_validated() {
    let e = |text: String| {
        gateprobe::scenario::load_str(Path::new("r.yaml"), &text, &|_| None)
            .expect_err("refused")
            .to_string()
    };
    let missing = e(scenario("", ALL_FEATURES, "replay: no/such/transcript.json"));
    assert!(
        missing.contains("r.yaml:") && missing.contains("cannot read") && missing.contains("--record"),
        "{missing}"
    );
    let not_transcript = e(scenario("", ALL_FEATURES, "replay: Cargo.toml"));
    assert!(not_transcript.contains("not JSON"), "{not_transcript}");
    let through_gateway = e(scenario("", ALL_FEATURES, REPLAY).replace("kind: direct", "kind: builtin"));
    assert!(
        through_gateway.contains("`replay` sends") && through_gateway.contains("kind: direct"),
        "{through_gateway}"
    );
}
