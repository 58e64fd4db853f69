//! `gateprobe import gitlab` against a fake GitLab GraphQL API serving the fixtures of
//! `tests/fixtures/gitlab/` (17.5, 17.11, 18.9 and 19.x shapes): the scenario written
//! for each matches its golden file and validates, `--check` finds no drift in it and
//! names each kind of change (`import_gitlab_drift.rs`), and neither the token nor `apiToken` ever travels where
//! it should not. Regenerate the golden scenarios after an intended change with
//! `GATEPROBE_BLESS=1 cargo test --test import_gitlab`.

mod gitlab_fake;

use std::path::{Path, PathBuf};
use std::process::Command;

use gateprobe::scenario::Target;
use gitlab_fake::*;
use serde_json::{Value, json};

// ---------- golden scenarios ----------

#[tokio::test(flavor = "multi_thread")]
async fn every_shape_imports_to_its_golden_scenario_which_validates_and_has_no_drift() {
    let bless = std::env::var_os("GATEPROBE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for shape in ["17.5", "17.11", "18.9", "19.2"] {
        let server = gitlab(fixture(shape)).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, text) = import(&server, &[], dir.path()).await;
        assert_eq!(run.code, Some(0), "{shape}: {}", run.all());
        let got = text.replace(&server.uri(), "http://gitlab.test");
        let golden = PathBuf::from(format!("tests/fixtures/gitlab/{shape}.yaml"));
        if bless {
            std::fs::write(&golden, &got).expect("bless");
        } else {
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if got != want {
                mismatches.push(format!("--- {}\n{want}\n+++ got\n{got}", golden.display()));
            }
        }
        let validated = gateprobe(args(&["validate", golden.to_str().expect("utf8")]), vec![]).await;
        assert_eq!(validated.code, Some(0), "{shape}: {}", validated.all());
        let same = check(&server, &dir.path().join("imported.yaml"), &[]).await;
        assert_eq!(same.code, Some(0), "{shape}: {}", same.all());
        assert!(same.stdout.starts_with("no drift: "), "{}", same.stdout);
        bodies(&server).await;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_18_9_shape_pages_maps_features_and_leaves_out_what_gateprobe_cannot_represent() {
    let server = gitlab(fixture("18.9")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, text) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let s = load(&text);

    // Two pages of models (5 at 3 a page) and five of features (14): every node came.
    let requests = bodies(&server).await;
    assert!(
        requests.iter().any(|b| b.contains("\"models\":\"cursor-3\"")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|b| b.contains("\"features\":\"cursor-12\"")),
        "{requests:?}"
    );
    assert_eq!(requests.len(), 1 + 5, "introspection, then one round per feature page");

    // A slug collision, and the model the list hides (taken from its feature setting).
    let names: Vec<&str> = s.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mixtral-8x7b-prod",
            "mixtral-8x7b-prod-2",
            "bedrock-mixtral",
            "codegemma",
            "qwen-beta"
        ]
    );
    assert!(text.contains("# GitLab: \"Mixtral 8x7B (prod)\" (gid://gitlab/Ai::SelfHostedModel/20)"));

    // Endpoints: mock backends that keep the path; Bedrock: no endpoint, the dummy gone.
    assert!(
        text.contains("endpoint: \"{{ backends.vllm-internal-8000.url }}/v1\""),
        "{text}"
    );
    assert!(
        text.contains("endpoint: \"{{ backends.vllm-internal-8000.url }}/v1/\""),
        "{text}"
    );
    assert!(!text.contains("bedrockselfhostedmodel"), "{text}");
    let bedrock = &s.models[model_index(&s, "bedrock-mixtral")];
    assert!(bedrock.endpoint.is_none());
    assert_eq!(
        s.backends[bedrock.backend.expect("a backend")].provider,
        gateprobe::scenario::BackendProvider::Bedrock
    );
    // Keys: placeholders the mock and the model share; none where GitLab has none.
    let mixtral = &s.models[0];
    assert_eq!(mixtral.api_key.as_deref(), Some("gateprobe-key-vllm-internal-8000"));
    assert_eq!(s.backends[mixtral.backend.expect("backend")].api_key, mixtral.api_key);
    assert!(s.models[model_index(&s, "codegemma")].api_key.is_none());

    // disabled, vendored, unassigned (Chat fallback) and model settings.
    let chat = model_index(&s, "mixtral-8x7b-prod");
    assert_eq!(target(&s, "duo_chat"), Some(Target::Model(chat)));
    assert_eq!(target(&s, "duo_chat_explain_code"), Some(Target::Fallback(chat)));
    assert_eq!(target(&s, "duo_chat_troubleshoot_job"), Some(Target::Fallback(chat)));
    assert_eq!(target(&s, "duo_chat_write_tests"), Some(Target::Vendored));
    assert_eq!(target(&s, "duo_chat_fix_code"), Some(Target::Disabled));
    assert_eq!(target(&s, "glab_ask_git_command"), Some(Target::Vendored));
    assert_eq!(
        target(&s, "summarize_review"),
        Some(Target::Model(model_index(&s, "qwen-beta")))
    );
    // Not shown by the instance: unknown, so not written (and no fallback).
    assert_eq!(target(&s, "review_merge_request"), None);
    assert!(text.contains("# review_merge_request: not shown by the instance"));

    // Unknown family and feature: left out, with a note on stderr and in the file.
    for note in [
        "not imported: model \"Granite\" (gid://gitlab/Ai::SelfHostedModel/24): family `granite` is unknown",
        "not imported: feature duo_agent_platform: set to `self_hosted` on the instance, and unknown",
        "not imported: feature generate_commit_message: uses model \"Granite\"",
    ] {
        assert!(run.stderr.contains(note), "{note}\n{}", run.stderr);
    }
    assert!(run.stderr.contains("duo_agent_platform_agentic_chat"), "{}", run.stderr);
    assert_eq!(target(&s, "generate_commit_message"), None);
    assert_eq!(s.gateway.url.as_deref(), Some("https://aigw.internal:5052/"));
    assert_eq!(s.instance.version, "18.9");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_refuses_what_would_be_left_out_and_writes_nothing() {
    let server = gitlab(fixture("18.9")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, text) = import(&server, &["--strict"], dir.path()).await;
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(text.is_empty(), "nothing is written under --strict");
    assert!(
        run.stderr.contains("error: not imported: model \"Granite\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("error: --strict"), "{}", run.stderr);
    // An instance with nothing left out passes --strict.
    let mut fx = fixture("18.9");
    let data = &mut fx["data"];
    data["models"]
        .as_array_mut()
        .expect("models")
        .retain(|m| m["name"] != "Granite");
    data["features"]
        .as_array_mut()
        .expect("features")
        .retain(|f| f["feature"] != "generate_commit_message" && f["feature"] != "duo_agent_platform");
    let server = gitlab(fx).await;
    let (run, _) = import(&server, &["--strict"], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_shape_selects_only_what_exists_and_reads_17x_defaults() {
    let server = gitlab(fixture("17.5")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, text) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let requests = bodies(&server).await;
    let data_query = &requests[1];
    assert!(
        !data_query.contains("duoSettings") && !data_query.contains("releaseState"),
        "{data_query}"
    );
    assert!(!data_query.contains("hasApiToken provider"), "{data_query}");
    let s = load(&text);
    // 17.5 is older than gateprobe's oldest request shapes: clamped, and said so.
    assert_eq!(s.instance.version, "17.7");
    assert!(text.contains("The instance runs GitLab 17.5.2-ee"), "{text}");
    // No duoSettings in 17.5: the gateway URL is a placeholder, and a note says why.
    assert!(
        text.contains("url: \"${env:AI_GATEWAY_URL:-http://127.0.0.1:5052}\""),
        "{text}"
    );
    assert!(
        run.stderr.contains("no `duoSettings { aiGatewayUrl }`"),
        "{}",
        run.stderr
    );
    // Empty identifier and unknown family: reported, never guessed.
    assert!(
        run.stderr
            .contains("model \"Llama 3\" (gid://gitlab/Ai::SelfHostedModel/4): its identifier is empty")
    );
    assert!(run.stderr.contains("family `mixtral_8x22b` is unknown"));
    // The endpoint without /v1 is kept as it is: that is what the run will test.
    assert!(
        text.contains("endpoint: \"{{ backends.vllm-internal-8000.url }}\"\n"),
        "{text}"
    );
    // 17.x shows a never-saved feature as `vendored`: a Chat sub-feature so shown falls
    // back like an unsaved one; other features stay vendored.
    let chat = model_index(&s, "mistral-7b");
    assert_eq!(target(&s, "duo_chat_explain_code"), Some(Target::Fallback(chat)));
    assert_eq!(target(&s, "duo_chat_refactor_code"), Some(Target::Fallback(chat)));
    assert_eq!(target(&s, "generate_commit_message"), Some(Target::Vendored));
    assert_eq!(target(&s, "duo_chat_fix_code"), Some(Target::Disabled));
    assert!(
        run.stderr
            .contains("GitLab 17.x shows a feature never saved as `vendored`")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_refuses_fields_its_schema_lacks() {
    // The control for the tests above: a 17.5 instance fails a query that selects
    // `provider` on models, as GitLab does, so a passing import selected only what exists.
    let server = gitlab(fixture("17.5")).await;
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/api/graphql", server.uri()))
        .bearer_auth(TOKEN)
        .json(&json!({"query": "query { aiSelfHostedModels(first: 100) { nodes { name provider } } }"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        reply["errors"][0]["message"],
        "Field 'provider' doesn't exist on type 'AiSelfHostedModel'"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_shape_reads_the_provider_and_a_gateway_url_set_by_environment() {
    let server = gitlab(fixture("19.2")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, text) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(bodies(&server).await[1].contains("hasApiToken provider }"));
    assert!(run.stderr.contains("provider VERTEX_AI"), "{}", run.stderr);
    assert!(
        run.stderr.contains("AI_GATEWAY_URL environment variable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("feature code_completions: uses model \"General\" of family `general`"),
        "{}",
        run.stderr
    );
    let s = load(&text);
    let claude = &s.models[model_index(&s, "claude-bedrock")];
    assert!(claude.endpoint.is_none() && claude.api_key.is_some());
    // --gateway-url replaces the URL the instance does not show.
    let (run, text) = import(&server, &["--gateway-url", "http://aigw.test:5052"], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(load(&text).gateway.url.as_deref(), Some("http://aigw.test:5052"));
}

#[tokio::test(flavor = "multi_thread")]
async fn null_data_is_no_access_or_a_note() {
    let mut fx = fixture("18.9");
    fx["data"]["models"] = Value::Null;
    let server = gitlab(fx).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, text) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("`aiSelfHostedModels: null`") && run.stderr.contains("read_api"),
        "{}",
        run.stderr
    );
    assert!(text.is_empty());

    let mut fx = fixture("18.9");
    fx["data"]["features"] = Value::Null;
    fx["data"]["duoSettings"] = Value::Null;
    let server = gitlab(fx).await;
    let (run, text) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains("`aiFeatureSettings` answered null"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`duoSettings` answered null"), "{}", run.stderr);
    let s = load(&text);
    assert!(s.features.is_empty() && s.models.len() == 4);
    let (run, _) = import(&server, &["--strict"], dir.path()).await;
    assert_eq!(run.code, Some(2), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_exits_3_without_showing_it() {
    let server = gitlab(fixture("18.9")).await;
    let a = args(&["import", "gitlab", "--url", &server.uri()]);
    let run = gateprobe(a.clone(), vec![("GITLAB_TOKEN", format!("{TOKEN}-wrong"))]).await;
    bodies(&server).await;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("HTTP 401") && run.stderr.contains("[redacted:GitLab token]"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("-wrong"), "{}", run.stderr);
    // No token at all: a usage error, before any request.
    let mut no_token = a.clone();
    no_token.extend(args(&["--token-env", "GATEPROBE_NO_SUCH_TOKEN"]));
    let run = gateprobe(no_token, vec![]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("$GATEPROBE_NO_SUCH_TOKEN is not set"),
        "{}",
        run.stderr
    );
    // Nothing listens: a harness error.
    let run = gateprobe(args(&["import", "gitlab", "--url", "http://127.0.0.1:9"]), vec![]).await;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("cannot reach GitLab: connect"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_scenarios_run_against_the_reference_gateway() {
    // The same setups in front of the built-in gateway: the 18.9 one passes; the 17.5
    // one has an endpoint without `/v1`, and the run says so.
    for (shape, code, failing) in [
        ("18.9", 0, None),
        ("17.5", 4, Some("FAIL  endpoint.mistral-7b.v1_suffix")),
    ] {
        let golden = std::fs::read_to_string(format!("tests/fixtures/gitlab/{shape}.yaml")).expect("golden");
        let builtin: String = golden
            .replace("  kind: aigw\n", "  kind: builtin\n")
            .lines()
            .filter(|l| !l.starts_with("  url: "))
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("builtin.yaml");
        std::fs::write(&file, builtin).expect("write");
        let reports = dir.path().join("reports");
        let run = gateprobe(
            args(&[
                "run",
                file.to_str().expect("utf8"),
                "--report-dir",
                reports.to_str().expect("utf8"),
            ]),
            vec![],
        )
        .await;
        assert_eq!(run.code, Some(code), "{shape}: {}", run.all());
        assert!(
            run.stdout.contains("skip  feature_mapping.duo_chat_fix_code.disabled"),
            "{}",
            run.stdout
        );
        if let Some(line) = failing {
            assert!(run.stdout.contains(line), "{shape}: {}", run.stdout);
        } else {
            assert!(
                run.stdout
                    .contains("skip  feature_mapping.duo_chat_write_tests.vendored"),
                "{}",
                run.stdout
            );
        }
    }
}

// ---------- TLS ----------

/// A self-signed certificate for 127.0.0.1 and its key, made by `openssl`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=gateprobe gitlab",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

/// A TLS front for `upstream` (host:port); returns its https URL.
async fn tls_front(upstream: String, cert: &Path, key: &Path) -> String {
    let identity =
        native_tls::Identity::from_pkcs8(&std::fs::read(cert).expect("cert"), &std::fs::read(key).expect("key"))
            .expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).expect("acceptor"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_behind_an_internal_ca_is_trusted_with_ca() {
    let server = gitlab(fixture("18.9")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path());
    let url = tls_front(server.address().to_string(), &cert, &key).await;
    let run = gateprobe(args(&["import", "gitlab", "--url", &url]), vec![]).await;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("cannot reach GitLab: tls") && run.stderr.contains("--ca"),
        "{}",
        run.stderr
    );
    let run = gateprobe(
        args(&["import", "gitlab", "--url", &url, "--ca", cert.to_str().expect("utf8")]),
        vec![],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    load(&run.stdout);
    let run = gateprobe(
        args(&["import", "gitlab", "--url", &url, "--ca", "/nonexistent/ca.pem"]),
        vec![],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.all());
}
