//! `gateprobe import gitlab` against a fake GitLab GraphQL API serving the fixtures of
//! `tests/fixtures/gitlab/` (17.5, 17.11, 18.9 and 19.x shapes): the scenario written
//! for each matches its golden file and validates, `--check` finds no drift in it and
//! names each kind of change, and neither the token nor `apiToken` ever travels where
//! it should not. Regenerate the golden scenarios after an intended change with
//! `GATEPROBE_BLESS=1 cargo test --test import_gitlab`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gateprobe::scenario::Target;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "glpat-Xq7secretTOKEN-4f2a9c";
/// Every fixture's `apiToken` values start so.
const API_TOKEN_VALUE: &str = "sk-plaintext-never-read";

// ---------- the fake GitLab ----------

/// One field of a query and its own selection.
#[derive(Debug)]
struct Field {
    name: String,
    args: String,
    children: Vec<Field>,
}

/// Parses a selection set `{ a b(x: 1) { c } }` from `chars` (after its `{`).
fn selection(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    while let Some(&c) = chars.peek() {
        match c {
            '}' => {
                chars.next();
                return out;
            }
            '{' => {
                chars.next();
                let children = selection(chars);
                if let Some(last) = out.last_mut() {
                    last.children = children;
                }
            }
            '(' => {
                chars.next();
                let mut args = String::new();
                for c in chars.by_ref() {
                    if c == ')' {
                        break;
                    }
                    args.push(c);
                }
                if let Some(last) = out.last_mut() {
                    last.args = args;
                }
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                    name.push(c);
                    chars.next();
                }
                out.push(Field {
                    name,
                    args: String::new(),
                    children: Vec::new(),
                });
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

fn parse_query(q: &str) -> Vec<Field> {
    let start = q.find('{').expect("a selection set");
    let mut chars = q[start + 1..].chars().peekable();
    selection(&mut chars)
}

/// A GitLab GraphQL API of one fixture's era (see tests/fixtures/gitlab/README.md).
struct FakeGitlab {
    fx: Value,
}

impl FakeGitlab {
    fn fields(&self, ty: &str) -> Vec<String> {
        self.fx["schema"][ty]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The error GitLab gives for a field its schema lacks.
    fn check(&self, ty: &str, sel: &[Field]) -> Result<(), String> {
        let known = self.fields(ty);
        for f in sel {
            if !known.contains(&f.name) {
                return Err(format!("Field '{}' doesn't exist on type '{ty}'", f.name));
            }
        }
        Ok(())
    }

    fn introspect(&self, q: &str) -> Value {
        let mut data = serde_json::Map::new();
        for (i, _) in q.match_indices("__type(name: \"") {
            let ty: String = q[i + 14..].chars().take_while(|c| *c != '"').collect();
            let alias = q[..i]
                .trim_end()
                .trim_end_matches(':')
                .rsplit(' ')
                .next()
                .unwrap_or_default();
            let v = match self.fx["schema"].get(&ty) {
                Some(Value::Array(fields)) => {
                    json!({"fields": fields.iter().map(|f| json!({"name": f})).collect::<Vec<_>>()})
                }
                _ => Value::Null,
            };
            data.insert(alias.to_owned(), v);
        }
        json!({"data": data})
    }

    fn project(node: &Value, sel: &[Field], models: &[Value]) -> Value {
        let mut out = serde_json::Map::new();
        for f in sel {
            let v = if f.name == "selfHostedModel" {
                let id = node["model"].as_str().unwrap_or_default();
                models
                    .iter()
                    .find(|m| m["id"] == id)
                    .map_or(Value::Null, |m| Self::project(m, &f.children, models))
            } else {
                node.get(&f.name).cloned().unwrap_or(Value::Null)
            };
            out.insert(f.name.clone(), v);
        }
        Value::Object(out)
    }

    fn connection(&self, f: &Field, all: &[Value], vars: &Value, ty: &str) -> Result<Value, String> {
        let models = self.fx["data"]["models"].as_array().cloned().unwrap_or_default();
        let page = self.fx["page_size"].as_u64().unwrap_or(100) as usize;
        let var = f
            .args
            .split("after: $")
            .nth(1)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let start: usize = vars[var.as_str()]
            .as_str()
            .and_then(|c| c.strip_prefix("cursor-"))
            .map_or(0, |n| n.parse().expect("cursor"));
        let end = (start + page).min(all.len());
        let mut out = serde_json::Map::new();
        for part in &f.children {
            match part.name.as_str() {
                "pageInfo" => {
                    out.insert(
                        "pageInfo".into(),
                        json!({"hasNextPage": end < all.len(), "endCursor": format!("cursor-{end}")}),
                    );
                }
                "nodes" => {
                    self.check(ty, &part.children)?;
                    for sub in part.children.iter().filter(|c| c.name == "selfHostedModel") {
                        self.check("AiSelfHostedModel", &sub.children)?;
                    }
                    let nodes: Vec<Value> = all[start..end]
                        .iter()
                        .map(|n| Self::project(n, &part.children, &models))
                        .collect();
                    out.insert("nodes".into(), Value::Array(nodes));
                }
                other => return Err(format!("Field '{other}' doesn't exist on the connection")),
            }
        }
        Ok(Value::Object(out))
    }

    fn answer(&self, q: &str, vars: &Value) -> Result<Value, String> {
        let mut data = serde_json::Map::new();
        let d = &self.fx["data"];
        let listed = |key: &str, filter: bool| -> Option<Vec<Value>> {
            d[key]
                .as_array()
                .map(|a| a.iter().filter(|m| !filter || m["listed"] != false).cloned().collect())
        };
        for f in parse_query(q) {
            self.check("Query", std::slice::from_ref(&f))?;
            let v = match f.name.as_str() {
                "metadata" => {
                    self.check("Metadata", &f.children)?;
                    Self::project(&d["metadata"], &f.children, &[])
                }
                "duoSettings" => {
                    self.check("DuoSettings", &f.children)?;
                    match &d["duoSettings"] {
                        Value::Null => Value::Null,
                        s => Self::project(s, &f.children, &[]),
                    }
                }
                "aiSelfHostedModels" => match listed("models", true) {
                    Some(all) => self.connection(&f, &all, vars, "AiSelfHostedModel")?,
                    None => Value::Null,
                },
                "aiFeatureSettings" => match listed("features", false) {
                    Some(all) => self.connection(&f, &all, vars, "AiFeatureSetting")?,
                    None => Value::Null,
                },
                other => return Err(format!("the fake does not serve `{other}`")),
            };
            data.insert(f.name, v);
        }
        Ok(Value::Object(data))
    }
}

impl Respond for FakeGitlab {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != format!("Bearer {TOKEN}") {
            // Echoes what it got, as a careless server might: the token must still not
            // come out of gateprobe.
            return ResponseTemplate::new(401).set_body_json(json!({"message": format!("401 Unauthorized ({auth})")}));
        }
        let body: Value = serde_json::from_slice(&req.body).expect("a JSON body");
        let q = body["query"].as_str().expect("a query");
        if q.contains("__type") {
            return ResponseTemplate::new(200).set_body_json(self.introspect(q));
        }
        match self.answer(q, &body["variables"]) {
            Ok(data) => ResponseTemplate::new(200).set_body_json(json!({"data": data})),
            Err(e) => ResponseTemplate::new(200).set_body_json(json!({"errors": [{"message": e}]})),
        }
    }
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("tests/fixtures/gitlab/{name}.json")).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

async fn gitlab(fx: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/graphql"))
        .respond_with(FakeGitlab { fx })
        .mount(&server)
        .await;
    server
}

/// The bodies the fake received; none may select `apiToken`.
async fn bodies(server: &MockServer) -> Vec<String> {
    let bodies: Vec<String> = server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    for b in &bodies {
        assert!(!b.contains("apiToken"), "a request selected apiToken: {b}");
    }
    bodies
}

// ---------- running the binary ----------

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

async fn gateprobe(args: Vec<String>, env: Vec<(&'static str, String)>) -> Run {
    let out: Output = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gateprobe"));
        for (k, _) in std::env::vars() {
            if k.starts_with("GATEPROBE_") || k == "GITLAB_TOKEN" || k.starts_with("AWS_") || k == "AI_GATEWAY_URL" {
                c.env_remove(k);
            }
        }
        c.env("GITLAB_TOKEN", TOKEN)
            .envs(env)
            .args(args)
            .output()
            .expect("gateprobe runs")
    })
    .await
    .expect("join");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.all().contains(TOKEN), "the token came out:\n{}", run.all());
    assert!(
        !run.all().contains(API_TOKEN_VALUE),
        "a stored key came out:\n{}",
        run.all()
    );
    run
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Imports `fx` to a file; returns the run and the file's text.
async fn import(server: &MockServer, extra: &[&str], dir: &Path) -> (Run, String) {
    let file = dir.join("imported.yaml");
    let mut a = args(&[
        "import",
        "gitlab",
        "--url",
        &server.uri(),
        "-o",
        file.to_str().expect("utf8"),
    ]);
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    let run = gateprobe(a, vec![]).await;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(!text.contains(TOKEN) && !text.contains(API_TOKEN_VALUE), "{text}");
    bodies(server).await;
    (run, text)
}

async fn check(server: &MockServer, scenario: &Path, extra: &[&str]) -> Run {
    let mut a = args(&[
        "import",
        "gitlab",
        "--url",
        &server.uri(),
        "--check",
        scenario.to_str().expect("utf8"),
    ]);
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    let run = gateprobe(a, vec![]).await;
    bodies(server).await;
    run
}

fn load(text: &str) -> gateprobe::scenario::Scenario {
    gateprobe::scenario::load_str(Path::new("imported.yaml"), text, &|_| None).expect("the import validates")
}

fn target(s: &gateprobe::scenario::Scenario, feature: &str) -> Option<Target> {
    s.features.iter().find(|f| f.feature.name == feature).map(|f| f.target)
}

fn model_index(s: &gateprobe::scenario::Scenario, name: &str) -> usize {
    s.models.iter().position(|m| m.name == name).expect(name)
}

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
