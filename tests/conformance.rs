//! The quickstart against the built-in gateway: it passes as shipped, and every named
//! fault of the reference gateway makes the check for the rule it breaks fail.

mod faults;

use faults::{assert_fails_its_rule, ids, run_with};
use gateprobe::gateway::Fault;
use gateprobe::report::Status;
use gateprobe::scenario::Scenario;

fn quickstart() -> Scenario {
    faults::shipped("scenarios/quickstart.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_passes_on_the_reference_gateway() {
    let r = run_with(&quickstart(), vec![]).await;
    assert_eq!(ids(&r, Status::Failed), Vec::<&str>::new());
    assert_eq!(ids(&r, Status::Error), Vec::<&str>::new());
    assert!(r.summary.passed >= 15, "only {} passed", r.summary.passed);
    for family in ["routing", "endpoint", "auth", "feature_mapping", "streaming"] {
        assert!(
            r.checks
                .iter()
                .any(|c| c.id.starts_with(&format!("{family}.")) || c.family == family)
        );
        assert!(
            r.checks
                .iter()
                .any(|c| c.family == family && c.status == Status::Passed),
            "no {family} check passed"
        );
    }
    // Evidence ties client requests to backend requests.
    let routed = r
        .checks
        .iter()
        .find(|c| c.id == "routing.mixtral-large.backend")
        .expect("check");
    assert_eq!(routed.evidence[0].backend[0].backend, "vllm-b");
    assert_eq!(routed.evidence[0].backend[0].path, "/v1/chat/completions");
    let azure = r
        .checks
        .iter()
        .find(|c| c.id == "routing.gpt-azure.model")
        .expect("azure check");
    assert_eq!(
        azure.evidence[0].backend[0].path,
        "/openai/deployments/gpt-4o-duo/chat/completions"
    );
}

/// The check each fault must fail: the id of the rule it breaks.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "append-v1",
        &["endpoint.mixtral-chat.v1_path", "endpoint.mixtral-chat.missing_v1"],
    ),
    ("keep-trailing-slash", &["endpoint.mixtral-chat.trailing_slash"]),
    (
        "drop-api-key",
        &["auth.mixtral-chat.key_forwarded", "auth.mixtral-large.key_forwarded"],
    ),
    ("send-foreign-key", &["auth.codegemma.no_foreign_key"]),
    (
        "wrong-model-name",
        &["routing.mixtral-chat.model", "routing.codegemma.model"],
    ),
    ("ignore-identifier-prefix", &["routing.mixtral-chat.model"]),
    ("route-empty-identifier", &["routing.empty_identifier"]),
    ("accept-missing-auth", &["auth.client.missing_token"]),
    ("accept-any-token", &["auth.client.wrong_token"]),
    ("leak-api-key-in-error", &["auth.key_not_leaked"]),
    ("reuse-first-endpoint", &["routing.mixtral-large.backend"]),
    ("swallow-upstream-error", &["endpoint.mixtral-chat.missing_v1"]),
    (
        "prompts-ignore-model-metadata",
        &["feature_mapping.duo_chat_fix_code.fallback"],
    ),
    ("broken-stream-framing", &["streaming.duo_chat"]),
    ("azure-bearer-instead-of-api-key", &["auth.gpt-azure.key_forwarded"]),
    ("azure-drop-api-version", &["endpoint.gpt-azure.api_version"]),
    (
        "unsigned-bedrock",
        &["auth.mixtral-bedrock.signed", "auth.claude-apac.signed"],
    ),
    (
        "bedrock-wrong-region",
        &["auth.mixtral-bedrock.signed", "auth.claude-apac.signed"],
    ),
    ("fake-upstream-404", &["endpoint.mixtral-chat.missing_v1"]),
    ("fallback-on-invalid-metadata", &["routing.invalid_metadata"]),
    ("cut-stream-after-error", &["streaming.chat_agent.error_end"]),
    ("stringify-missing-key", &["auth.codegemma.no_foreign_key"]),
    (
        "bedrock-wrong-operation",
        &["routing.mixtral-bedrock.operation", "routing.claude-apac.operation"],
    ),
    (
        "forward-client-token",
        &["auth.mixtral-chat.key_forwarded", "auth.codegemma.no_foreign_key"],
    ),
];

/// Faults of the OpenAI front only (its feature map); `tests/proxy.rs` shows them
/// failing their checks there.
const FRONT_ONLY: &[&str] = &["serve-disabled-feature", "no-chat-fallback"];

/// Faults that must fail nothing but their own rule's checks.
const PRECISE: &[(&str, &str)] = &[
    ("keep-trailing-slash", "endpoint."),
    ("send-foreign-key", "auth."),
    ("route-empty-identifier", "routing.empty_identifier"),
    ("accept-missing-auth", "auth.client.missing_token"),
    ("accept-any-token", "auth.client.wrong_token"),
    ("leak-api-key-in-error", "auth.key_not_leaked"),
    ("swallow-upstream-error", "endpoint."),
    ("broken-stream-framing", "streaming."),
    ("azure-bearer-instead-of-api-key", "auth.gpt-azure.key_forwarded"),
    ("fake-upstream-404", "endpoint."),
    ("fallback-on-invalid-metadata", "routing.invalid_metadata"),
    ("cut-stream-after-error", "streaming.chat_agent.error_end"),
    ("stringify-missing-key", "auth.codegemma.no_foreign_key"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_fails_the_check_of_the_rule_it_breaks() {
    let s = quickstart();
    for fault in Fault::ALL {
        if FRONT_ONLY.contains(&fault.name()) {
            let r = run_with(&s, vec![fault]).await;
            assert_eq!(
                ids(&r, Status::Failed),
                Vec::<&str>::new(),
                "{} touched the AI gateway API",
                fault.name()
            );
            continue;
        }
        let r = run_with(&s, vec![fault]).await;
        assert_fails_its_rule(fault, &r, EXPECTED, PRECISE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_carry_expected_actual_and_evidence() {
    let r = run_with(&quickstart(), vec![Fault::ReuseFirstEndpoint]).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "routing.mixtral-large.backend")
        .expect("check");
    assert_eq!(c.status, Status::Failed);
    assert_eq!(c.expected, "received by backend `vllm-b` only");
    assert!(c.actual.contains("vllm-a"), "{}", c.actual);
    assert_eq!(c.evidence[0].backend[0].backend, "vllm-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_report() {
    let s = quickstart();
    let r = run_with(&s, vec![Fault::LeakApiKeyInError]).await;
    let json = serde_json::to_string(&r).expect("json");
    assert!(!s.secrets.is_empty());
    for (label, secret) in &s.secrets {
        assert!(!json.contains(secret.as_str()), "secret {label} leaked into the report");
    }
    assert!(
        json.contains("[redacted:"),
        "redaction markers expected where keys were"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bedrock_403_for_a_model_is_not_blamed_on_the_signature() {
    // With the family sent as the model, Bedrock refuses the unknown model with 403,
    // as it refuses a bad signature: the check says which one it was.
    let r = run_with(&quickstart(), vec![Fault::WrongModelName]).await;
    let signed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.id.ends_with(".signed") && c.status == Status::Failed)
        .collect();
    assert!(!signed.is_empty(), "{:#?}", r.checks);
    for c in signed {
        assert!(c.actual.contains("refused access to model"), "{}: {}", c.id, c.actual);
        assert!(!c.actual.contains("signature"), "{}: {}", c.id, c.actual);
    }
}

/// The quickstart with one line of its text replaced.
fn quickstart_with(from: &str, to: &str) -> Scenario {
    let path = std::path::Path::new("scenarios/quickstart.yaml");
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from}");
    gateprobe::scenario::load_str(path, &text.replacen(from, to, 1), &|_| None).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mistakes_fail_the_checks_of_the_rule_they_break() {
    // An endpoint without /v1.
    let s = quickstart_with(
        "endpoint: \"{{ backends.vllm-a.url }}/v1\"",
        "endpoint: \"{{ backends.vllm-a.url }}\"",
    );
    let r = run_with(&s, vec![]).await;
    let failed = ids(&r, Status::Failed);
    assert!(failed.contains(&"endpoint.mixtral-chat.v1_suffix"), "{failed:?}");
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "endpoint.mixtral-chat.v1_suffix")
        .expect("check");
    assert!(c.actual.contains("add /v1"), "{}", c.actual);
    // A model key its server does not accept.
    let s = quickstart_with(
        "    api_key: ${env:GATEPROBE_VLLM_A_KEY:-sk-quickstart-a-91c3e7}\n    identifier",
        "    api_key: sk-not-the-servers-key\n    identifier",
    );
    let r = run_with(&s, vec![]).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "auth.mixtral-chat.key_forwarded")
        .expect("check");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("refused it (401)"), "{}", c.actual);
    // Two models' endpoints swapped.
    let s = quickstart_with(
        "endpoint: \"{{ backends.vllm-a.url }}/v1\"",
        "endpoint: \"{{ backends.vllm-b.url }}/v1\"",
    );
    let r = run_with(&s, vec![]).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "routing.mixtral-chat.model")
        .expect("check");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("served by vllm-a"), "{}", c.actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_meets_the_profile_and_a_swallowed_error_fails_there() {
    let s = faults::shipped("tests/fixtures/scenarios/failing-backends.yaml");
    let r = run_with(&s, vec![]).await;
    let resilience: Vec<_> = r.checks.iter().filter(|c| c.family == "resilience").collect();
    assert!(resilience.len() >= 40, "{}", resilience.len());
    assert_eq!(ids(&r, Status::Failed), Vec::<&str>::new());
    assert_eq!(ids(&r, Status::Error), Vec::<&str>::new());
    // An upstream error turned into an empty 200 is caught on every surface.
    let r = run_with(&s, vec![Fault::SwallowUpstreamError]).await;
    let failed = ids(&r, Status::Failed);
    for surface in ["chat_agent", "code_suggestions", "prompt"] {
        assert!(
            failed.contains(&format!("resilience.rate-limited.{surface}").as_str()),
            "{surface}: {failed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_profile_tolerates_of_a_real_gateway_is_a_warning_there() {
    // The reference gateway with the fault, run as an external AI gateway: the aigw
    // profile tolerates a chat stream cut after its error event, a profile that does
    // not fails it.
    let mut settings = gateprobe::gateway::GatewaySettings::new(
        gateprobe::scenario::BuiltinAuth::Bypass,
        None,
        std::time::Duration::from_secs(5),
    );
    settings.faults = vec![Fault::CutStreamAfterError];
    let host = gateprobe::server::ServerHost::new(1).expect("host");
    let gw = host
        .serve(
            ([127, 0, 0, 1], 0).into(),
            gateprobe::gateway::router(settings).expect("router"),
        )
        .expect("serve");
    let mut s = quickstart();
    s.gateway.kind = gateprobe::scenario::GatewayKind::Aigw;
    s.gateway.url = Some(gw.url());
    s.selection = gateprobe::scenario::selection::Selection::all();
    s.select("endpoint.mixtral-chat.missing_v1").expect("pattern");
    s.select("streaming.chat_agent.error_end").expect("pattern");
    let status = |r: &gateprobe::report::RunReport| {
        r.checks
            .iter()
            .find(|c| c.id == "streaming.chat_agent.error_end")
            .map(|c| (c.status, c.actual.clone()))
            .expect("check")
    };
    let r = run_with(&s, vec![]).await;
    let (st, actual) = status(&r);
    assert_eq!(st, Status::Warning, "{actual}");
    assert!(actual.contains("tolerated by profile aigw"), "{actual}");
    assert_eq!(r.summary.failed, 0);
    s.gateway.profile = gateprobe::scenario::profile::Profile::parse(
        std::path::Path::new("strict.yaml"),
        "name: strict\nexpect:\n  missing_v1.chat_agent: {status: 200, in_band: true}\n",
        "strict.yaml",
    )
    .expect("profile");
    let r = run_with(&s, vec![]).await;
    assert_eq!(status(&r).0, Status::Failed, "{}", status(&r).1);
}
