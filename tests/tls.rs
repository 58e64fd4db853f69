//! TLS to a gateway: certificates are verified unless the scenario says otherwise. The
//! reference gateway is put behind a TLS-terminating front with a self-signed
//! certificate (made by the `openssl` command) and the quickstart runs through it:
//! refused as untrusted by default, trusted with `gateway.tls.ca`, accepted with
//! `gateway.tls.verify: false`.

use std::path::{Path, PathBuf};
use std::process::Command;

use gateprobe::gateway::bedrock::AwsSettings;
use gateprobe::gateway::{self, GatewaySettings};
use gateprobe::report::Status;
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{BuiltinAuth, Scenario};
use gateprobe::server::{Server, ServerHost};
use gateprobe::wire::aws::sigv4::Credentials;
use tokio_util::sync::CancellationToken;

/// A self-signed certificate for 127.0.0.1 and its PKCS#8 key, in `dir`.
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
            "/CN=gateprobe test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command (apt-get install -y openssl)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

fn quickstart() -> Scenario {
    let path = Path::new("scenarios/quickstart.yaml");
    gateprobe::scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid")
}

/// The reference gateway, and a TLS front that forwards every connection to it. The
/// gateway is configured ahead of the run, as an admin would: its AWS settings point
/// at the Bedrock mock, which gets a fixed port for that.
async fn tls_gateway(s: &mut Scenario, cert: &Path, key: &Path) -> (ServerHost, Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bedrock = s
        .backends
        .iter_mut()
        .find(|b| b.aws.is_some())
        .expect("a Bedrock backend");
    bedrock.port = Some(port);
    let aws = bedrock.aws.as_ref().expect("aws");
    let mut settings = GatewaySettings::new(BuiltinAuth::Enforce, s.gateway.token.clone(), s.gateway.timeout);
    settings.aws = Some(AwsSettings {
        runtime_endpoint: format!("http://127.0.0.1:{port}"),
        region: aws.region.clone(),
        credentials: Credentials::new(aws.access_key_id.clone(), aws.secret_access_key.clone()),
    });
    let router = gateway::router(settings).expect("router");
    let host = ServerHost::new(1).expect("host");
    let plain = host.serve(([127, 0, 0, 1], 0).into(), router).expect("serve");
    let upstream = plain.url().trim_start_matches("http://").to_owned();
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
                // A client that refuses the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    (host, plain, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_verified_unless_the_scenario_trusts_or_waives_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path());
    let mut s = quickstart();
    let (_host, _plain, url) = tls_gateway(&mut s, &cert, &key).await;
    let opts = RunOptions {
        gateway_url: Some(url),
        ..RunOptions::default()
    };
    let cancel = CancellationToken::new();

    // Default: the system trust store does not know a self-signed certificate.
    let r = run::run(&s, &opts, &cancel).await;
    // Only the checks of what the scenario configures (an endpoint's /v1) pass
    // without a gateway.
    let passed = |r: &gateprobe::report::RunReport| {
        r.checks
            .iter()
            .filter(|c| c.status == Status::Passed && !c.id.ends_with(".v1_suffix"))
            .count()
    };
    assert_eq!(passed(&r), 0, "{:?}", r.summary);
    let tls_errors = r
        .checks
        .iter()
        .filter(|c| c.actual.starts_with("no reply (tls:"))
        .count();
    assert!(tls_errors > 0, "{:#?}", r.checks.first());
    assert!(!r.gateway.tls_unverified);

    // Trusted through `gateway.tls.ca`: every request is answered.
    s.gateway.tls.ca_pem = Some(std::fs::read(&cert).expect("cert"));
    let r = run::run(&s, &opts, &cancel).await;
    assert!(
        r.checks.iter().all(|c| !c.actual.starts_with("no reply")),
        "{:#?}",
        r.checks
    );
    assert!(r.summary.passed >= 20, "{:?}", r.summary);

    // Verification off: answered too, and the report says so.
    s.gateway.tls = gateprobe::adapter::Tls {
        verify: false,
        ..gateprobe::adapter::Tls::default()
    };
    let r = run::run(&s, &opts, &cancel).await;
    assert!(r.checks.iter().all(|c| !c.actual.starts_with("no reply")));
    assert!(r.gateway.tls_unverified);
}

#[test]
fn the_tls_block_is_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = self_signed(dir.path());
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello\n").expect("write");
    let scenario = |tls: &str| {
        format!(
            "version: 1\nname: t\ngateway: {{kind: aigw, url: \"https://127.0.0.1:8443\", tls: {tls}}}\nbackends:\n  v: {{provider: openai, models: [m]}}\nself_hosted_models:\n  - {{name: m, family: mistral, endpoint: \"{{{{ backends.v.url }}}}/v1\", identifier: custom_openai/m}}\nfeatures:\n  duo_chat: m\n"
        )
    };
    let load = |tls: &str| gateprobe::scenario::load_str(&dir.path().join("s.yaml"), &scenario(tls), &|_| None);
    let s = load(&format!(
        "{{ca: {}}}",
        cert.file_name().and_then(|n| n.to_str()).expect("name")
    ))
    .expect("valid");
    assert!(s.gateway.tls.verify && s.gateway.tls.ca_pem.is_some());
    assert!(!load("{verify: false}").expect("valid").gateway.tls.verify);
    for (tls, says) in [
        ("{ca: missing.pem}", "cannot read"),
        ("{ca: not-a-cert.pem}", "holds no PEM certificate"),
        ("{ca: cert.pem, verify: false}", "no effect with `verify: false`"),
        ("{verfy: false}", "verify"),
    ] {
        let e = load(tls).expect_err(tls).to_string();
        assert!(e.contains(says) && e.contains("s.yaml:3:"), "{tls}: {e}");
    }
}
