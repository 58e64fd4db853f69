//! `gateprobe import gitlab --check`: a scenario imported from the fake GitLab (see
//! `gitlab_fake`) against an instance edited after the import. Each kind of change is
//! named and exits 4; ids, titles, release states and servers are not drift.

mod gitlab_fake;

use gitlab_fake::*;
use serde_json::{Value, json};

// ---------- drift ----------

/// Imports the 18.9 shape, edits the instance, and checks: one exit code and output.
async fn drift_after(edit: impl FnOnce(&mut Value), extra: &[&str]) -> Run {
    let server = gitlab(fixture("18.9")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, _) = import(&server, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let mut fx = fixture("18.9");
    edit(&mut fx["data"]);
    let changed = gitlab(fx).await;
    let run = check(&changed, &dir.path().join("imported.yaml"), extra).await;
    bodies(&server).await;
    bodies(&changed).await;
    run
}

fn model_mut<'a>(data: &'a mut Value, name: &str) -> &'a mut Value {
    data["models"]
        .as_array_mut()
        .expect("models")
        .iter_mut()
        .find(|m| m["name"] == name)
        .expect(name)
}

fn feature_mut<'a>(data: &'a mut Value, name: &str) -> &'a mut Value {
    data["features"]
        .as_array_mut()
        .expect("features")
        .iter_mut()
        .find(|f| f["feature"] == name)
        .expect(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_each_kind_of_change_and_exits_4() {
    type Edit = Box<dyn FnOnce(&mut Value) + Send>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|d| model_mut(d, "Mixtral 8x7B (prod)")["model"] = json!("mistral")),
            "model \"Mixtral 8x7B (prod)\": family is mixtral in the scenario, mistral on the instance",
        ),
        (
            Box::new(|d| model_mut(d, "CodeGemma")["identifier"] = json!("codegemma-7b-it")),
            "model \"CodeGemma\": identifier is `codegemma-7b` in the scenario, `codegemma-7b-it` on the instance",
        ),
        (
            Box::new(|d| model_mut(d, "CodeGemma")["identifier"] = json!("azure/codegemma-7b")),
            "model \"CodeGemma\": provider is custom_openai in the scenario, azure on the instance",
        ),
        (
            Box::new(|d| model_mut(d, "Mixtral 8x7B (prod)")["endpoint"] = json!("http://vllm.internal:8000")),
            "model \"Mixtral 8x7B (prod)\": endpoint path is `/v1` in the scenario, `` on the instance",
        ),
        (
            Box::new(|d| model_mut(d, "mixtral-8x7b-prod")["hasApiToken"] = json!(false)),
            "model \"mixtral-8x7b-prod\": API key is set in the scenario, not set on the instance",
        ),
        (
            Box::new(|d| {
                let mut m = model_mut(d, "CodeGemma").clone();
                m["id"] = json!("gid://gitlab/Ai::SelfHostedModel/99");
                m["name"] = json!("CodeGemma 2");
                d["models"].as_array_mut().expect("models").push(m);
            }),
            "model \"CodeGemma 2\": added on the instance (family codegemma",
        ),
        (
            Box::new(|d| {
                d["models"]
                    .as_array_mut()
                    .expect("models")
                    .retain(|m| m["name"] != "Bedrock Mixtral")
            }),
            "model \"Bedrock Mixtral\": removed from the instance",
        ),
        (
            Box::new(|d| feature_mut(d, "duo_chat_write_tests")["provider"] = json!("disabled")),
            "feature duo_chat_write_tests: setting is vendored in the scenario, disabled on the instance",
        ),
        (
            Box::new(|d| {
                let f = feature_mut(d, "duo_chat_explain_code");
                f["provider"] = json!("self_hosted");
                f["model"] = json!("gid://gitlab/Ai::SelfHostedModel/21");
            }),
            "feature duo_chat_explain_code: setting is unset in the scenario, model \"mixtral-8x7b-prod\" on the instance",
        ),
        (
            Box::new(|d| d["duoSettings"]["aiGatewayUrl"] = json!("https://aigw2.internal:5052")),
            "gateway: URL is `https://aigw.internal:5052` in the scenario, `https://aigw2.internal:5052` on the instance",
        ),
    ];
    for (edit, named) in cases {
        let run = drift_after(edit, &[]).await;
        assert_eq!(run.code, Some(4), "{named}\n{}", run.all());
        assert!(run.stdout.contains(named), "{named}\n{}", run.stdout);
        assert!(run.stdout.starts_with("drift: "), "{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_ignores_ids_titles_release_states_and_servers() {
    let run = drift_after(
        |d| {
            for m in d["models"].as_array_mut().expect("models") {
                m["releaseState"] = json!("GA");
                m["updatedAt"] = json!("2026-01-01T00:00:00Z");
                // The server is the mock's to stand in for; only the path is compared.
                if let Some(e) = m["endpoint"].as_str() {
                    m["endpoint"] = json!(e.replace("vllm.internal:8000", "vllm2.internal:9000"));
                }
            }
            for f in d["features"].as_array_mut().expect("features") {
                f["title"] = json!("Renamed");
            }
        },
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_json() {
    let run = drift_after(
        |d| model_mut(d, "Mixtral 8x7B (prod)")["model"] = json!("mistral"),
        &["--format", "json"],
    )
    .await;
    assert_eq!(run.code, Some(4), "{}", run.all());
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["drift"], true);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(
        v["changes"],
        json!([{"kind": "family", "item": "model \"Mixtral 8x7B (prod)\"", "scenario": "mixtral", "instance": "mistral"}])
    );
    assert!(
        v["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["skipped"] == true))
    );
    assert_eq!(v["models"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_matches_a_hand_written_scenario_by_slug_and_refuses_a_bad_one() {
    let server = gitlab(fixture("18.9")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, text) = import(&server, &[], dir.path()).await;
    // Without the name comments, models match by the name the import gives them.
    let bare: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("# GitLab:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("bare.yaml");
    std::fs::write(&file, bare).expect("write");
    let run = check(&server, &file, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    // A scenario that does not validate: exit 2, before any request.
    std::fs::write(&file, "version: 1\nfeatures: {duo_chat: nothing}\n").expect("write");
    let before = server.received_requests().await.expect("recording").len();
    let run = check(&server, &file, &[]).await;
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert_eq!(server.received_requests().await.expect("recording").len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_prints_json_with_the_scenario_when_no_file_is_given() {
    let server = gitlab(fixture("17.11")).await;
    let run = gateprobe(
        args(&["import", "gitlab", "--url", &server.uri(), "--format", "json"]),
        vec![],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["version"], "17.11.3-ee");
    assert_eq!(v["output"], Value::Null);
    load(v["scenario"].as_str().expect("the scenario"));
    assert!(v["notes"].as_array().is_some_and(|n| {
        n.iter()
            .any(|n| n["item"].as_str().is_some_and(|i| i.contains("Gemini Vertex")))
    }));
}
