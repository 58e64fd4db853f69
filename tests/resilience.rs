//! A gateway that dies mid-run: what was measured before is kept, the rest are
//! harness errors, and the run ends quickly instead of waiting out every timeout.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use gateprobe::gateway::{self, GatewaySettings};
use gateprobe::report::Status;
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::BuiltinAuth;
use gateprobe::server::{Server, ServerHost};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_dying_mid_run_keeps_what_was_measured() {
    let path = Path::new("scenarios/quickstart.yaml");
    let mut s =
        gateprobe::scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid");
    // This gateway has no Bedrock settings: leave the Bedrock models' checks out.
    for entry in [
        "!*.mixtral-bedrock.*",
        "!*.claude-apac.*",
        "!*.duo_chat_write_tests.*",
        "!*.summarize_review.*",
        "!streaming.duo_chat_write_tests",
    ] {
        s.select(entry).expect("pattern");
    }
    let inner = gateway::router(GatewaySettings::new(
        BuiltinAuth::Enforce,
        s.gateway.token.clone(),
        s.gateway.timeout,
    ))
    .expect("router");
    let host = ServerHost::new(1).expect("host");
    let guard: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(None));
    let served = Arc::new(AtomicUsize::new(0));
    let (g, n) = (Arc::clone(&guard), Arc::clone(&served));
    // After six requests the gateway shuts down: open connections close, new ones are refused.
    let dying = axum::Router::new().fallback(move |req: Request| {
        let (inner, g, n) = (inner.clone(), Arc::clone(&g), Arc::clone(&n));
        async move {
            if n.fetch_add(1, Ordering::SeqCst) == 5 {
                drop(g.lock().expect("lock").take());
            }
            inner.oneshot(req).await
        }
    });
    let server = host.serve(([127, 0, 0, 1], 0).into(), dying).expect("serve");
    let url = server.url();
    *guard.lock().expect("lock") = Some(server);

    let started = std::time::Instant::now();
    let r = run::run(
        &s,
        &RunOptions {
            shard: None,
            gateway_url: Some(url),
            faults: vec![],
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the run waited on a dead gateway"
    );
    assert!(
        r.aborted.as_deref().is_some_and(|a| a.contains("stopped answering")),
        "{:?}",
        r.aborted
    );
    assert!(
        r.summary.passed >= 3,
        "checks judged before the death were lost: {:?}",
        r.summary
    );
    assert!(r.summary.errors > 0);
    assert_eq!(
        r.summary.failed,
        0,
        "a dead gateway is a harness error, not a failed rule: {:?}",
        r.checks
            .iter()
            .filter(|c| c.status == Status::Failed)
            .map(|c| (&c.id, &c.actual))
            .collect::<Vec<_>>()
    );
    assert_eq!(r.summary.total, r.checks.len());
    let not_run = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Error && c.actual.starts_with("not run"))
        .count();
    assert!(not_run > 0);
}
