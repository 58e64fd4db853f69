//! The fake GitLab GraphQL API the `import gitlab` tests run against (it serves the
//! fixtures of `tests/fixtures/gitlab/` and refuses fields their schema lacks), and how
//! those tests run the binary and read what it wrote.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use gateprobe::scenario::Target;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "glpat-Xq7secretTOKEN-4f2a9c";
/// Every fixture's `apiToken` values start so.
pub const API_TOKEN_VALUE: &str = "sk-plaintext-never-read";

// ---------- the fake GitLab ----------

/// One field of a query and its own selection.
#[derive(Debug)]
pub struct Field {
    name: String,
    args: String,
    children: Vec<Field>,
}

/// Parses a selection set `{ a b(x: 1) { c } }` from `chars` (after its `{`).
pub fn selection(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Vec<Field> {
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

pub fn parse_query(q: &str) -> Vec<Field> {
    let start = q.find('{').expect("a selection set");
    let mut chars = q[start + 1..].chars().peekable();
    selection(&mut chars)
}

/// A GitLab GraphQL API of one fixture's era (see tests/fixtures/gitlab/README.md).
pub struct FakeGitlab {
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

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("tests/fixtures/gitlab/{name}.json")).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

pub async fn gitlab(fx: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/graphql"))
        .respond_with(FakeGitlab { fx })
        .mount(&server)
        .await;
    server
}

/// The bodies the fake received; none may select `apiToken`.
pub async fn bodies(server: &MockServer) -> Vec<String> {
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

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub async fn gateprobe(args: Vec<String>, env: Vec<(&'static str, String)>) -> Run {
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

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Imports `fx` to a file; returns the run and the file's text.
pub async fn import(server: &MockServer, extra: &[&str], dir: &Path) -> (Run, String) {
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

pub async fn check(server: &MockServer, scenario: &Path, extra: &[&str]) -> Run {
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

pub fn load(text: &str) -> gateprobe::scenario::Scenario {
    gateprobe::scenario::load_str(Path::new("imported.yaml"), text, &|_| None).expect("the import validates")
}

pub fn target(s: &gateprobe::scenario::Scenario, feature: &str) -> Option<Target> {
    s.features.iter().find(|f| f.feature.name == feature).map(|f| f.target)
}

pub fn model_index(s: &gateprobe::scenario::Scenario, name: &str) -> usize {
    s.models.iter().position(|m| m.name == name).expect(name)
}
