//! Mocks served over TLS (`tls:` of a backend): a certificate from a CA gateprobe makes
//! for the run, mTLS, and certificates a client must refuse. Shown on the wire (an
//! OpenSSL client, as the gateways use, refuses or accepts) and through the checks:
//! the built-in gateway and the direct client fail with the TLS error in the evidence
//! until they trust the CA and present the client certificate, and a launched gateway
//! is pointed at the CA with `{{ mocks.ca }}`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gateprobe::mock::journal::Journal;
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::Scenario;
use gateprobe::server::ServerHost;
use tokio_util::sync::CancellationToken;

use common::quickstart::{check, quickstart_with, run_default};

fn load(text: &str) -> Scenario {
    gateprobe::scenario::load_str(Path::new("t.yaml"), text, &|_| None).expect("valid")
}

fn bad(r: &RunReport) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| matches!(c.status, Status::Failed | Status::Error))
        .map(|c| format!("{}: {}", c.id, c.actual))
        .collect()
}

struct Mocks {
    _host: ServerHost,
    mocks: Vec<gateprobe::mock::RunningMock>,
}

impl Mocks {
    fn url(&self, name: &str) -> String {
        self.mocks.iter().find(|m| m.name == name).expect("mock").server.url()
    }

    fn pki(&self) -> &gateprobe::mock::tls::MockPki {
        gateprobe::mock::pki(&self.mocks).expect("a mock PKI")
    }
}

const BACKENDS: &str = r#"
backends:
  ca: {provider: openai, models: [m], tls: {mode: ca}}
  mtls: {provider: openai, models: [m], tls: {mode: mtls}}
  wrong-host: {provider: openai, models: [m], tls: {mode: bad_cert}}
  self-signed: {provider: openai, models: [m], tls: {mode: bad_cert, defect: self_signed}}
  expired: {provider: openai, models: [m], tls: {mode: bad_cert, defect: expired}}
  plain: {provider: openai, models: [m]}
"#;

fn start() -> Mocks {
    let s = load(BACKENDS);
    let host = ServerHost::new(1).expect("host");
    let mocks =
        gateprobe::mock::start_all(&host, &s.backends, &Arc::new(Journal::new(Instant::now(), 100))).expect("start");
    Mocks { _host: host, mocks }
}

/// An OpenSSL client (reqwest with native-tls, as gateprobe's own clients).
fn client(ca: Option<&str>, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(pem) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("ca"));
    }
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pkcs8_pem(cert.as_bytes(), key.as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

async fn models(c: &reqwest::Client, base: &str) -> Result<u16, String> {
    match c.get(format!("{base}/v1/models")).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(gateprobe::text::error_chain(&e)),
    }
}

#[tokio::test]
async fn clients_accept_only_a_trusted_matching_certificate_and_mtls_wants_theirs() {
    let m = start();
    assert!(m.url("ca").starts_with("https://127.0.0.1:"));
    assert!(m.url("plain").starts_with("http://127.0.0.1:"));
    let ca = std::fs::read_to_string(&m.pki().files.ca).expect("ca file");
    let cert = std::fs::read_to_string(&m.pki().files.client_cert).expect("cert file");
    let key = std::fs::read_to_string(&m.pki().files.client_key).expect("key file");

    // Without the CA, the system trust store does not know the certificate.
    let e = models(&client(None, None), &m.url("ca")).await.expect_err("refused");
    assert!(e.contains("certificate verify failed"), "{e}");
    let trusting = client(Some(&ca), None);
    assert_eq!(models(&trusting, &m.url("ca")).await, Ok(200));

    // A certificate a client must refuse, even one that trusts the CA.
    for (name, why) in [
        ("wrong-host", "IP address mismatch"),
        ("self-signed", "self-signed certificate"),
        ("expired", "certificate has expired"),
    ] {
        let e = models(&trusting, &m.url(name)).await.expect_err(name);
        assert!(
            e.contains("certificate verify failed") && e.contains(why),
            "{name}: {e}"
        );
    }

    // mTLS: refused without a client certificate, served with the run's.
    let e = models(&trusting, &m.url("mtls"))
        .await
        .expect_err("no client certificate");
    assert!(e.contains("certificate required"), "{e}");
    let presenting = client(Some(&ca), Some((&cert, &key)));
    assert_eq!(models(&presenting, &m.url("mtls")).await, Ok(200));
    // A certificate from another CA is refused too.
    let other = gateprobe::mock::tls::MockPki::create(None).expect("another PKI");
    let foreign_cert = std::fs::read_to_string(&other.files.client_cert).expect("cert");
    let foreign_key = std::fs::read_to_string(&other.files.client_key).expect("key");
    let e = models(&client(Some(&ca), Some((&foreign_cert, &foreign_key))), &m.url("mtls"))
        .await
        .expect_err("foreign client certificate");
    assert!(e.contains("alert"), "{e}");
}

/// The quickstart with `vllm-a` (Mixtral chat, duo_chat's model) served over TLS, and
/// `gateway.tls` as given.
fn quickstart_tls(mode: &str, tls: &str) -> Scenario {
    let gateway_tls = if tls.is_empty() {
        String::new()
    } else {
        format!("  tls: {tls}\n")
    };
    quickstart_with(&[
        (
            "    api_key: ${env:GATEPROBE_VLLM_A_KEY:-sk-quickstart-a-91c3e7}\n  vllm-b:",
            &format!("    api_key: ${{env:GATEPROBE_VLLM_A_KEY:-sk-quickstart-a-91c3e7}}\n    tls: {mode}\n  vllm-b:"),
        ),
        ("  timeout: 10s\n", &format!("  timeout: 10s\n{gateway_tls}")),
    ])
}

const TRUST: &str = "{ca: \"{{ mocks.ca }}\"}";
const TRUST_AND_PRESENT: &str =
    "{ca: \"{{ mocks.ca }}\", client_cert: \"{{ mocks.client_cert }}\", client_key: \"{{ mocks.client_key }}\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_gateway_reaches_a_tls_mock_only_when_it_trusts_the_ca() {
    let r = run_default(&quickstart_tls("{mode: ca}", TRUST)).await;
    assert_eq!(bad(&r), Vec::<String>::new());
    let c = check(&r, "routing.mixtral-chat.backend");
    assert_eq!(c.status, Status::Passed);
    assert!(
        c.evidence[0].request.endpoint.starts_with("https://127.0.0.1:"),
        "{:?}",
        c.evidence[0].request
    );

    // The gateway does not trust the run's CA: nothing reaches the mock, and the
    // check says why.
    let r = run_default(&quickstart_tls("{mode: ca}", "")).await;
    let c = check(&r, "routing.mixtral-chat.backend");
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.actual.starts_with("no backend received it") && c.actual.contains("certificate verify failed"),
        "{}",
        c.actual
    );
    // The other models are reached as before.
    for id in [
        "routing.mixtral-large.backend",
        "routing.gpt-azure.backend",
        "routing.claude-apac.backend",
    ] {
        assert_eq!(check(&r, id).status, Status::Passed, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_is_refused_even_with_the_ca_trusted() {
    for (defect, why) in [
        ("wrong_host", "IP address mismatch"),
        ("self_signed", "self-signed certificate"),
        ("expired", "certificate has expired"),
    ] {
        let r = run_default(&quickstart_tls(&format!("{{mode: bad_cert, defect: {defect}}}"), TRUST)).await;
        let c = check(&r, "routing.mixtral-chat.backend");
        assert_eq!(c.status, Status::Failed, "{defect}");
        assert!(c.actual.contains(why), "{defect}: {}", c.actual);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_mock_serves_the_gateway_only_with_the_client_certificate() {
    let r = run_default(&quickstart_tls("{mode: mtls}", TRUST)).await;
    let c = check(&r, "routing.mixtral-chat.backend");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("certificate required"), "{}", c.actual);
    let r = run_default(&quickstart_tls("{mode: mtls}", TRUST_AND_PRESENT)).await;
    assert_eq!(bad(&r), Vec::<String>::new());
}

const DIRECT: &str = r#"
gateway: {kind: direct, timeout: 5s, tls: TLS}
backends:
  vllm: {provider: openai, models: [M], tls: {mode: MODE}}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", identifier: custom_openai/M}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_client_fails_on_tls_until_it_trusts_and_presents() {
    let direct = |mode: &str, tls: &str| load(&DIRECT.replace("MODE", mode).replace("TLS", tls));
    let r = run_default(&direct("mtls", TRUST_AND_PRESENT)).await;
    assert_eq!(bad(&r), Vec::<String>::new());
    assert!(r.summary.passed >= 4, "{:?}", r.summary);
    let r = run_default(&direct("mtls", TRUST)).await;
    let c = check(&r, "vendor.m.chat");
    assert_eq!(c.status, Status::Failed, "{}", c.actual);
    assert!(c.actual.contains("certificate required"), "{}", c.actual);
    let r = run_default(&direct("bad_cert", TRUST)).await;
    let c = check(&r, "vendor.m.models");
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.actual.contains("no reply (tls:") && c.actual.contains("IP address mismatch"),
        "{}",
        c.actual
    );
    // `verify: false` accepts it, and the report says certificates went unchecked.
    let r = run_default(&direct("bad_cert", "{verify: false}")).await;
    assert_eq!(bad(&r), Vec::<String>::new());
    assert!(r.gateway.tls_unverified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_gateway_is_pointed_at_the_mock_ca() {
    const SCENARIO: &str = r#"version: 1
gateway:
  kind: aigw
  auth: {token: tok-tls-launched-1}
  timeout: 10s
  launch:
    command: ["${env:GATEPROBE_BIN:-gateprobe}", gateway, "${env:SELF:-launched.yaml}", --listen, "127.0.0.1:{{ launch.port }}"]
    env: {SSL_CERT_FILE: "CA_FILE"}
    ready: "http://127.0.0.1:{{ launch.port }}/monitoring/healthz"
    timeout: 30s
backends:
  vllm: {provider: openai, models: [M], api_key: sk-tls-launched-1, tls: {mode: ca}}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", api_key: sk-tls-launched-1, identifier: custom_openai/M}
features: {duo_chat: m}
"#;
    let dir = tempfile::tempdir().expect("tmp");
    let run_with = |ca_file: &str| {
        let text = SCENARIO.replace("CA_FILE", ca_file);
        let path = dir.path().join("launched.yaml");
        std::fs::write(&path, &text).expect("write");
        let self_path = path.display().to_string();
        let env = move |n: &str| match n {
            "GATEPROBE_BIN" => Some(env!("CARGO_BIN_EXE_gateprobe").to_owned()),
            "SELF" => Some(self_path.clone()),
            _ => None,
        };
        let s = gateprobe::scenario::load_str(&path, &text, &env).expect("valid");
        let opts = RunOptions {
            work_dir: Some(dir.path().join("reports")),
            ..RunOptions::default()
        };
        async move { run::run(&s, &opts, &CancellationToken::new()).await }
    };
    let r = run_with("{{ mocks.ca }}").await;
    assert_eq!(bad(&r), Vec::<String>::new(), "{:?}", r.aborted);
    assert!(dir.path().join("reports/mock-tls/mock-ca.pem").exists());
    // The system store alone (an empty bundle) does not know the mock CA.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let r = run_with(&empty.display().to_string()).await;
    let c = check(&r, "routing.m.backend");
    assert_eq!(c.status, Status::Failed);
    assert!(c.actual.contains("certificate verify failed"), "{}", c.actual);
}

#[tokio::test]
async fn gateprobe_mock_prints_the_certificate_files_and_removes_them_when_stopped() {
    use std::io::{BufRead, BufReader};
    let profile = "mocks/cloud-realism.yaml";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args(["mock", profile, "--foreground"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut out: Vec<String> = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("utf8");
        let last = line.starts_with("export GATEPROBE_MOCK_CLIENT_KEY=");
        out.push(line);
        if last {
            break;
        }
    }
    let var = |name: &str| {
        out.iter()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} missing: {out:#?}"))
            .to_owned()
    };
    let vllm = var("GATEPROBE_BACKEND_VLLM_URL");
    assert!(vllm.starts_with("https://127.0.0.1:"), "{vllm}");
    assert!(var("AZURE_API_BASE").starts_with("http://127.0.0.1:"));
    assert_eq!(var("AWS_SESSION_TOKEN"), "FwoGZXIvYXdzEGATEPROBEPROFILESESSION");
    let ca = var("GATEPROBE_MOCK_CA");
    assert_eq!(var("SSL_CERT_FILE"), ca);
    assert_eq!(var("REQUESTS_CA_BUNDLE"), ca);
    let (cert, key) = (var("GATEPROBE_MOCK_CLIENT_CERT"), var("GATEPROBE_MOCK_CLIENT_KEY"));
    // The printed files are what a client needs to reach the mTLS mock.
    let read = |p: &str| std::fs::read_to_string(p).expect("printed file");
    let c = client(Some(&read(&ca)), Some((&read(&cert), &read(&key))));
    let r = c
        .get(format!("{vllm}/v1/models"))
        .bearer_auth("sk-profile-vllm-0a1b2c")
        .send()
        .await
        .expect("served over mTLS");
    assert_eq!(r.status(), 200);
    // Stopped by a signal, the mocks take their files with them.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!Path::new(&ca).exists(), "{ca} outlived the mocks");
}
