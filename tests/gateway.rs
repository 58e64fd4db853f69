//! The reference gateway against a fixed-reply upstream stub: exact upstream requests
//! (path, bearer, model) and the AI gateway's client-auth answers.

use gateprobe::gateway::{self, Fault, GatewaySettings};
use gateprobe::scenario::BuiltinAuth;
use gateprobe::server::{Server, ServerHost};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn start(auth: BuiltinAuth, faults: Vec<Fault>) -> (ServerHost, Server) {
    let host = ServerHost::new(1).expect("host");
    let router = gateway::router(GatewaySettings {
        faults,
        ..GatewaySettings::new(auth, Some("tok".into()), std::time::Duration::from_secs(5))
    })
    .expect("router");
    let server = host.serve(([127, 0, 0, 1], 0).into(), router).expect("serve");
    (host, server)
}

fn completion_body(endpoint: &str, key: &str, identifier: &str) -> Value {
    json!({"current_file": {"file_name": "a.py", "language_identifier": "python",
                            "content_above_cursor": "def f(", "content_below_cursor": ""},
           "model_provider": "litellm", "prompt_version": 2, "prompt": null,
           "model_endpoint": endpoint, "model_name": "mixtral", "model_api_key": key,
           "model_identifier": identifier, "stream": false})
}

async fn post(url: &str, body: &Value, token: Option<&str>, realm: bool) -> (u16, String) {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(url)
        .json(body);
    b = b.header("X-Gitlab-Authentication-Type", "oidc");
    if realm {
        b = b.header("X-Gitlab-Realm", "self-managed");
    }
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    let r = b.send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn upstream_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"id": "x", "object": "chat.completion", "created": 0, "model": "M",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    )
}

#[tokio::test]
async fn routes_custom_openai_to_chat_completions_with_bearer_and_model() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-9"))
        .and(body_partial_json(json!({"model": "Mixtral-8x7B"})))
        .respond_with(upstream_reply())
        .expect(2)
        .mount(&up)
        .await;
    let (_h, gw) = start(BuiltinAuth::Enforce, vec![]);
    let url = format!("{}/v2/code/completions", gw.url());
    // A trailing slash is removed once; no prefix means custom_openai.
    for (endpoint, id) in [
        (format!("{}/v1/", up.uri()), "custom_openai/Mixtral-8x7B"),
        (format!("{}/v1", up.uri()), "Mixtral-8x7B"),
    ] {
        let (s, body) = post(&url, &completion_body(&endpoint, "sk-9", id), Some("tok"), true).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["choices"][0]["text"], "hello");
        assert_eq!(v["object"], "text_completion");
    }
}

#[tokio::test]
async fn no_key_sends_dummy_key_and_empty_identifier_never_calls_upstream() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer dummy_key"))
        .respond_with(upstream_reply())
        .expect(1)
        .mount(&up)
        .await;
    let (_h, gw) = start(BuiltinAuth::Enforce, vec![]);
    let url = format!("{}/v2/code/completions", gw.url());
    let endpoint = format!("{}/v1", up.uri());
    assert_eq!(
        post(
            &url,
            &completion_body(&endpoint, "", "custom_openai/M"),
            Some("tok"),
            true
        )
        .await
        .0,
        200
    );
    let (s, _) = post(&url, &completion_body(&endpoint, "", ""), Some("tok"), true).await;
    assert_eq!(s, 500);
}

#[tokio::test]
async fn missing_v1_upstream_404_surfaces_per_endpoint() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})))
        .mount(&up)
        .await;
    let (_h, gw) = start(BuiltinAuth::Enforce, vec![]);
    let meta = json!({"provider": "api", "name": "mixtral", "endpoint": up.uri(), "api_key": "", "identifier": "custom_openai/M"});
    let (s, body) = post(
        &format!("{}/v2/code/completions", gw.url()),
        &completion_body(&up.uri(), "", "custom_openai/M"),
        Some("tok"),
        true,
    )
    .await;
    assert_eq!((s, body.as_str()), (500, "Internal Server Error"));
    let (s, body) = post(
        &format!("{}/v1/prompts/chat/explain_code", gw.url()),
        &json!({"inputs": {"content": "x"}, "model_metadata": meta}),
        Some("tok"),
        true,
    )
    .await;
    assert_eq!((s, body.as_str()), (421, r#"{"detail":"404: Not Found"}"#));
    let (s, body) = post(
        &format!("{}/v2/chat/agent", gw.url()),
        &json!({"messages": [{"role": "user", "content": "x"}], "model_metadata": meta}),
        Some("tok"),
        true,
    )
    .await;
    assert_eq!(s, 200);
    let ev: Value = serde_json::from_str(body.lines().next().expect("line")).expect("json");
    assert_eq!(ev["type"], "error");
    assert!(ev["data"]["message"].as_str().expect("msg").contains("404"));
}

#[tokio::test]
async fn client_auth_answers_like_the_ai_gateway() {
    let (_h, gw) = start(BuiltinAuth::Enforce, vec![]);
    let url = format!("{}/v2/code/completions", gw.url());
    let body = completion_body("http://127.0.0.1:9/v1", "", "M");
    let cases = [
        (None, true, "No authorization header presented"),
        (Some("wrong"), true, "Forbidden by auth provider"),
        (Some("tok"), false, "Header mismatch 'X-Gitlab-Realm'"),
    ];
    for (token, realm, msg) in cases {
        let (s, b) = post(&url, &body, token, realm).await;
        assert_eq!(s, 401);
        assert_eq!(serde_json::from_str::<Value>(&b).expect("json"), json!({"error": msg}));
    }
    let h = reqwest::Client::builder().no_proxy().build().expect("c");
    let r = h
        .get(format!("{}/monitoring/healthz", gw.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(
        (r.status().as_u16(), r.text().await.expect("b")),
        (200, "{}".to_owned())
    );
    let r = h
        .post(&url)
        .header("Authorization", "Basic abc")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.text().await.expect("b"),
        r#"{"error":"Invalid authorization header"}"#
    );

    let (_h2, open) = start(BuiltinAuth::BypassWithHeader, vec![]);
    let r = h
        .post(format!("{}/v2/code/completions", open.url()))
        .header("Bypass-Auth", "true")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_ne!(r.status(), 401, "Bypass-Auth: true is honoured");
    let r = h
        .post(format!("{}/v2/code/completions", open.url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

/// A prompt request naming `endpoint`: the gateway's status and body.
async fn prompt_at(gw: &Server, endpoint: &str) -> (u16, String) {
    let meta = json!({"provider": "api", "name": "mixtral", "endpoint": endpoint, "api_key": "", "identifier": "custom_openai/M"});
    post(
        &format!("{}/v1/prompts/chat/explain_code", gw.url()),
        &json!({"inputs": {"content": "x"}, "model_metadata": meta}),
        Some("tok"),
        true,
    )
    .await
}

#[tokio::test]
async fn a_redirecting_backend_is_not_followed_to_another_host() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(upstream_reply())
        .expect(0)
        .mount(&elsewhere)
        .await;
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/v1/chat/completions", elsewhere.uri())),
        )
        .expect(1)
        .mount(&up)
        .await;
    let (_h, gw) = start(BuiltinAuth::Enforce, vec![]);
    let (s, body) = prompt_at(&gw, &format!("{}/v1", up.uri())).await;
    // The 307 is the backend's answer, relayed as an upstream error.
    assert_eq!((s, body.as_str()), (421, r#"{"detail":"307: Temporary Redirect"}"#));
}

#[tokio::test]
async fn it_calls_only_its_own_backends_unless_told_otherwise() {
    let own = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(upstream_reply())
        .expect(1)
        .mount(&own)
        .await;
    let stranger = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(upstream_reply())
        .expect(1)
        .mount(&stranger)
        .await;
    let host = ServerHost::new(1).expect("host");
    let serve = |upstreams| {
        let router = gateway::router(GatewaySettings {
            upstreams,
            ..GatewaySettings::new(
                BuiltinAuth::Enforce,
                Some("tok".into()),
                std::time::Duration::from_secs(5),
            )
        })
        .expect("router");
        host.serve(([127, 0, 0, 1], 0).into(), router).expect("serve")
    };
    let kept = serve(Some(vec![own.uri()]));
    let (s, _) = prompt_at(&kept, &format!("{}/v1", own.uri())).await;
    assert_eq!(s, 200);
    let meta = json!({"provider": "api", "name": "mixtral", "endpoint": format!("{}/v1", stranger.uri()),
                      "api_key": "", "identifier": "custom_openai/M"});
    let (s, body) = post(
        &format!("{}/v2/chat/agent", kept.url()),
        &json!({"messages": [{"role": "user", "content": "x"}], "model_metadata": meta}),
        Some("tok"),
        true,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let ev: Value = serde_json::from_str(body.lines().next().expect("line")).expect("json");
    assert_eq!(ev["type"], "error", "{body}");
    let msg = ev["data"]["message"].as_str().expect("msg");
    assert!(
        msg.contains("is not one of the gateway's backends") && msg.contains("--allow-any-upstream"),
        "{msg}"
    );
    // Told otherwise: the stranger gets its one call.
    let open = serve(None);
    assert_eq!(prompt_at(&open, &format!("{}/v1", stranger.uri())).await.0, 200);
}
