//! Cloud realism in the mocks: Bedrock models served only through inference profiles,
//! STS session credentials, and the Azure `api-version`s a resource serves. Each is
//! shown on the wire (the mock answers what the real service answers) and in a check
//! that fails with that text in its evidence and passes against a correct setup.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use gateprobe::gateway::bedrock::AwsSettings;
use gateprobe::gateway::{self, GatewaySettings};
use gateprobe::mock::journal::Journal;
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{BuiltinAuth, Scenario};
use gateprobe::server::ServerHost;
use gateprobe::wire::aws::sigv4::{self, Credentials};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::quickstart::{check, quickstart_with, run_default};

const TOKEN: &str = "FwoGZXIvYXdzEGATEPROBESESSIONTOKEN0001";

fn failed(r: &RunReport) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| c.id.as_str())
        .collect()
}

/// One running mock backend of scenario text `yaml`.
struct Mock {
    _host: ServerHost,
    _mocks: Vec<gateprobe::mock::RunningMock>,
    url: String,
}

fn mock(yaml: &str) -> Mock {
    let s = gateprobe::scenario::load_str(Path::new("m.yaml"), yaml, &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    let mocks =
        gateprobe::mock::start_all(&host, &s.backends, &Arc::new(Journal::new(Instant::now(), 100))).expect("start");
    let url = mocks[0].server.url();
    Mock {
        _host: host,
        _mocks: mocks,
        url,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

// ---- Bedrock: models served only through an inference profile ----

const BEDROCK: &str = "backends:\n  br:\n    provider: bedrock\n    models: [anthropic.claude-3-7-sonnet-20250219-v1:0, anthropic.claude-3-5-sonnet-20241022-v2:0]\n    access_key_id: AKIDCLOUDTEST0001\n    secret_access_key: cloudSecret00000000000000000000000000000\n    region: us-east-1\nEXTRA";

/// POSTs a Converse request for `id` signed with `creds`; the token header is added
/// after signing (unsigned) when `late_token` is given.
async fn converse(
    base: &str,
    id: &str,
    creds: &Credentials,
    late_token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let path = gateprobe::wire::bedrock::path(id, gateprobe::wire::bedrock::Operation::Converse);
    let url = format!("{base}{path}");
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        .to_string()
        .into_bytes();
    let host = base.trim_start_matches("http://").to_owned();
    let headers = [("content-type", "application/json"), ("host", host.as_str())];
    let parts = sigv4::RequestParts {
        method: "POST",
        raw_path: &path,
        raw_query: "",
        headers: &headers,
        body: &body,
    };
    let signed = sigv4::sign(&parts, creds, "us-east-1", SystemTime::now()).expect("sign");
    let mut b = http().post(url).header("content-type", "application/json");
    for (k, v) in signed.iter() {
        b = b.header(k, v);
    }
    if let Some(t) = late_token {
        b = b.header("x-amz-security-token", t);
    }
    let r = b.body(body).send().await.expect("send");
    let h = r.headers().clone();
    (r.status().as_u16(), h, r.text().await.expect("body"))
}

fn bedrock_creds() -> Credentials {
    Credentials::new("AKIDCLOUDTEST0001", "cloudSecret00000000000000000000000000000")
}

#[tokio::test]
async fn a_bare_id_of_a_profile_only_model_gets_bedrocks_validation_exception() {
    let m = mock(&BEDROCK.replace("EXTRA", ""));
    let (status, headers, body) = converse(
        &m.url,
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        &bedrock_creds(),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        headers["x-amzn-errortype"],
        "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"message": "Invocation of model ID anthropic.claude-3-7-sonnet-20250219-v1:0 with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."})
    );
    // Its cross-region profiles, and a model not on the list, are served.
    for id in [
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "apac.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
    ] {
        let (status, _, body) = converse(&m.url, id, &bedrock_creds(), None).await;
        assert_eq!(status, 200, "{id}: {body}");
    }
    // A backend's own list replaces the built-in one.
    let m = mock(&BEDROCK.replace(
        "EXTRA",
        "    profile_only: [anthropic.claude-3-5-sonnet-20241022-v2:0]\n",
    ));
    let (status, _, _) = converse(
        &m.url,
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        &bedrock_creds(),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = converse(
        &m.url,
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        &bedrock_creds(),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_profile_only_identifier_fails_routing_with_bedrocks_error() {
    // As shipped, the model is configured with its apac. profile.
    let r = run_default(&quickstart_with(&[])).await;
    assert_eq!(check(&r, "routing.claude-apac.model").status, Status::Passed);
    // Configured with the bare id, the runtime refuses every call.
    let s = quickstart_with(&[(
        "identifier: bedrock/apac.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "identifier: bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
    )]);
    let r = run_default(&s).await;
    let c = check(&r, "routing.claude-apac.model");
    assert_eq!(c.status, Status::Failed, "{}", c.actual);
    assert!(
        c.actual.contains("400 ValidationException: Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput isn\u{2019}t supported"),
        "{}",
        c.actual
    );
    assert!(
        c.actual
            .contains("`bedrock/apac.anthropic.claude-3-5-sonnet-20241022-v2:0`"),
        "{}",
        c.actual
    );
    // It is the setup, not the signature: the runtime accepted that.
    assert_eq!(check(&r, "auth.claude-apac.signed").status, Status::Passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_profile_only_id_fails_the_direct_chat_check_with_bedrocks_error() {
    let text = format!(
        "gateway: {{kind: direct, timeout: 5s}}\n{}self_hosted_models:\n  - name: br\n    family: claude_3\n    identifier: bedrock/ID\n",
        BEDROCK.replace("EXTRA", "")
    );
    let run_id = |id: &str| {
        let s = gateprobe::scenario::load_str(Path::new("d.yaml"), &text.replace("ID", id), &|_| None).expect("valid");
        async move { run::run(&s, &RunOptions::default(), &CancellationToken::new()).await }
    };
    let r = run_id("us.anthropic.claude-3-7-sonnet-20250219-v1:0").await;
    assert_eq!(failed(&r), Vec::<&str>::new());
    let r = run_id("anthropic.claude-3-7-sonnet-20250219-v1:0").await;
    assert_eq!(failed(&r), vec!["vendor.br.chat", "vendor.br.stream"]);
    let c = check(&r, "vendor.br.chat");
    assert!(c.actual.starts_with("400 "), "{}", c.actual);
    let body = &c.evidence[0].response.as_ref().expect("a response").body;
    assert!(body.contains("with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile"), "{body}");
}

// ---- STS session credentials ----

#[tokio::test]
async fn temporary_credentials_need_their_token_signed() {
    let m = mock(&BEDROCK.replace("EXTRA", &format!("    session_token: {TOKEN}\n")));
    let id = "anthropic.claude-3-5-sonnet-20241022-v2:0";
    let temp = bedrock_creds().with_session_token(TOKEN);
    let (status, _, body) = converse(&m.url, id, &temp, None).await;
    assert_eq!(status, 200, "{body}");
    let invalid = json!({"message": "The security token included in the request is invalid."});
    // Without the token, and with another one.
    for creds in [
        bedrock_creds(),
        bedrock_creds().with_session_token("FwoGZXIvYXdzANOTHERSESSION"),
    ] {
        let (status, headers, body) = converse(&m.url, id, &creds, None).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).expect("json"), invalid);
        assert!(
            headers["x-amzn-errortype"]
                .to_str()
                .expect("ascii")
                .starts_with("UnrecognizedClientException:")
        );
    }
    // The right token, added after signing.
    let (status, _, body) = converse(&m.url, id, &bedrock_creds(), Some(TOKEN)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not signed"), "{body}");
}

#[tokio::test]
async fn the_aws_sdk_signs_what_the_mock_accepts_with_a_session_token() {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let m = mock(&BEDROCK.replace("EXTRA", &format!("    session_token: {TOKEN}\n")));
    let url = format!("{}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse", m.url);
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        .to_string()
        .into_bytes();
    let identity = aws_credential_types::Credentials::new(
        "AKIDCLOUDTEST0001",
        "cloudSecret00000000000000000000000000000",
        Some(TOKEN.to_owned()),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let host = m.url.trim_start_matches("http://").to_owned();
    let headers = [("content-type", "application/json"), ("host", host.as_str())];
    let req = SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(&body)).expect("req");
    let (instructions, _) = sign(req, &params).expect("sign").into_parts();
    let mut b = http().post(&url).header("content-type", "application/json");
    let mut names = Vec::new();
    for (n, v) in instructions.headers() {
        names.push(n.to_ascii_lowercase());
        b = b.header(n, v);
    }
    assert!(names.contains(&"x-amz-security-token".to_owned()), "{names:?}");
    let r = b.body(body).send().await.expect("send");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// The quickstart's Bedrock backend with temporary credentials.
fn quickstart_with_token() -> Scenario {
    quickstart_with(&[(
        "    region: ap-southeast-1\n",
        &format!("    region: ap-southeast-1\n    session_token: ${{env:GATEPROBE_CLOUD_TEST_TOKEN:-{TOKEN}}}\n"),
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_the_session_token_fails_the_signature_check() {
    // The built-in gateway gets the token with the other AWS settings: it passes.
    let s = quickstart_with_token();
    let r = run_default(&s).await;
    assert_eq!(failed(&r), Vec::<&str>::new());
    let c = check(&r, "auth.claude-apac.signed");
    assert!(c.expected.contains("X-Amz-Security-Token"), "{}", c.expected);
    // Nothing of the token reaches the report.
    let json = serde_json::to_string(&r).expect("json");
    assert!(!json.contains(TOKEN));

    // A gateway set up with the key pair but not AWS_SESSION_TOKEN.
    let mut s = s;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let bedrock = s.backends.iter_mut().find(|b| b.aws.is_some()).expect("bedrock");
    bedrock.port = Some(port);
    let aws = bedrock.aws.clone().expect("aws");
    let mut settings = GatewaySettings::new(BuiltinAuth::Enforce, s.gateway.token.clone(), s.gateway.timeout);
    settings.aws = Some(AwsSettings {
        runtime_endpoint: format!("http://127.0.0.1:{port}"),
        region: aws.region.clone(),
        credentials: Credentials::new(aws.access_key_id.clone(), aws.secret_access_key.clone()),
    });
    let host = ServerHost::new(1).expect("host");
    let gw = host
        .serve(([127, 0, 0, 1], 0).into(), gateway::router(settings).expect("router"))
        .expect("serve");
    let opts = RunOptions {
        gateway_url: Some(gw.url()),
        ..RunOptions::default()
    };
    let r = run::run(&s, &opts, &CancellationToken::new()).await;
    for id in ["auth.claude-apac.signed", "auth.mixtral-bedrock.signed"] {
        let c = check(&r, id);
        assert_eq!(c.status, Status::Failed, "{id}: {}", c.actual);
        assert!(
            c.actual
                .contains("rejected the signature (403: The security token included in the request is invalid.)"),
            "{id}: {}",
            c.actual
        );
    }
    // The other providers' checks are untouched.
    assert_eq!(check(&r, "auth.gpt-azure.key_forwarded").status, Status::Passed);
}

// ---- Azure: the api-versions a resource serves ----

const AZURE: &str = "backends:\n  az:\n    provider: azure\n    models: [gpt-4o-duo]\n    api_key: az-cloud-1\nEXTRA";

async fn azure_post(base: &str, path_and_query: &str) -> (u16, String) {
    let r = http()
        .post(format!("{base}{path_and_query}"))
        .header("api-key", "az-cloud-1")
        .json(&json!({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-duo"}))
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test]
async fn azure_serves_only_its_api_versions() {
    let m = mock(&AZURE.replace("EXTRA", ""));
    let dep = "/openai/deployments/gpt-4o-duo/chat/completions";
    let not_found = r#"{"error":{"code":"404","message":"Resource not found"}}"#;
    for v in ["2024-10-21", "2025-02-01-preview", "2024-02-01", "2025-04-01-preview"] {
        let (s, b) = azure_post(&m.url, &format!("{dep}?api-version={v}")).await;
        assert_eq!(s, 200, "{v}: {b}");
    }
    // Retired, never published, malformed, missing.
    for q in [
        "?api-version=2023-03-15-preview",
        "?api-version=2024-11-01-preview",
        "?api-version=2024-10-21x",
        "?api-version=",
        "",
    ] {
        let (s, b) = azure_post(&m.url, &format!("{dep}{q}")).await;
        assert_eq!((s, b.as_str()), (404, not_found), "{q}");
    }
    // The v1 surface takes none, or `preview`; a dated one is refused.
    assert_eq!(azure_post(&m.url, "/openai/v1/chat/completions").await.0, 200);
    assert_eq!(
        azure_post(&m.url, "/openai/v1/chat/completions?api-version=preview")
            .await
            .0,
        200
    );
    let (s, b) = azure_post(&m.url, "/openai/v1/chat/completions?api-version=2025-01-01-preview").await;
    assert_eq!(
        (s, b.as_str()),
        (
            400,
            r#"{"error":{"code":"BadRequest","message":"API version not supported"}}"#
        )
    );
    // A resource narrowed to the GA version, or extended by one.
    let m = mock(&AZURE.replace("EXTRA", "    api_versions: [2024-10-21]\n"));
    assert_eq!(
        azure_post(&m.url, &format!("{dep}?api-version=2024-10-21")).await.0,
        200
    );
    assert_eq!(
        azure_post(&m.url, &format!("{dep}?api-version=2025-02-01-preview"))
            .await
            .0,
        404
    );
    let m = mock(&AZURE.replace("EXTRA", "    api_versions: [default, 2099-01-01-preview]\n"));
    assert_eq!(
        azure_post(&m.url, &format!("{dep}?api-version=2099-01-01-preview"))
            .await
            .0,
        200
    );
    assert_eq!(
        azure_post(&m.url, &format!("{dep}?api-version=2024-10-21")).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_version_the_resource_does_not_serve_fails_api_version() {
    let r = run_default(&quickstart_with(&[])).await;
    assert_eq!(check(&r, "endpoint.gpt-azure.api_version").status, Status::Passed);
    // The built-in gateway sends LiteLLM's default, 2025-02-01-preview; this resource
    // serves the GA version only.
    let s = quickstart_with(&[(
        "    models: [gpt-4o-duo]\n",
        "    models: [gpt-4o-duo]\n    api_versions: [2024-10-21]\n",
    )]);
    let r = run_default(&s).await;
    let c = check(&r, "endpoint.gpt-azure.api_version");
    assert_eq!(c.status, Status::Failed, "{}", c.actual);
    assert!(
        c.actual
            .contains("api-version `2025-02-01-preview`, which it does not serve (answered 404: Resource not found"),
        "{}",
        c.actual
    );
    // The client sees Azure's 404 through the gateway.
    let routed = check(&r, "routing.gpt-azure.model");
    let body = &routed.evidence[0].response.as_ref().expect("response").body;
    assert!(body.contains("Resource not found"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_client_on_a_version_the_resource_does_not_serve_fails_chat() {
    let text = format!(
        "gateway: {{kind: direct, timeout: 5s}}\nchecks: [vendor]\n{}self_hosted_models:\n  - name: az\n    family: gpt\n    endpoint: \"{{{{ backends.az.url }}}}\"\n    api_key: az-cloud-1\n    identifier: azure/gpt-4o-duo\n",
        AZURE.replace("EXTRA", "VERSIONS")
    );
    let run_with = |versions: &str| {
        let s = gateprobe::scenario::load_str(Path::new("d.yaml"), &text.replace("VERSIONS", versions), &|_| None)
            .expect("valid");
        async move { run::run(&s, &RunOptions::default(), &CancellationToken::new()).await }
    };
    assert_eq!(failed(&run_with("").await), Vec::<&str>::new());
    let r = run_with("    api_versions: [2024-06-01]\n").await;
    // The 404 comes before the key is looked at: a wrong key gets it too.
    assert_eq!(
        failed(&r),
        vec!["vendor.az.chat", "vendor.az.stream", "vendor.az.wrong_key"]
    );
    let c = check(&r, "vendor.az.chat");
    assert_eq!(
        c.actual,
        r#"404 {"error":{"code":"404","message":"Resource not found"}}"#
    );
}
