//! The load engine in-process: counts, cancellation, the open-loop backlog, and
//! coordinated omission against a real local server that stalls.
//!
//! No assertion here depends on how fast the machine is: they compare measurements
//! with each other (a stall of 1 s against service times of milliseconds).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use gateprobe::load::http::{ClientKind, HttpFactory, HttpRequestSpec, HttpTarget};
use gateprobe::load::{self, ClosedLoop, LagCheck, Mode, OpenLoop, Outcome, RunConfig, ScheduleSpec};
use gateprobe::metrics::ErrorClass;
use gateprobe::server::ServerHost;
use tokio_util::sync::CancellationToken;

fn closed(clients: usize, duration: Option<Duration>, requests: Option<u64>) -> RunConfig {
    RunConfig {
        mode: Mode::Closed(ClosedLoop {
            clients,
            think: Duration::ZERO,
            duration,
            requests,
        }),
        timeout: Some(Duration::from_secs(10)),
        stop_grace: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn closed_loop_sends_exactly_n_requests_through_a_closure_client() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    // A factory is any Fn(worker) -> client, and a client any FnMut() -> future.
    let factory = move |_worker: usize| {
        let c = Arc::clone(&c);
        move || {
            let n = c.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::task::yield_now().await;
                if n.is_multiple_of(10) {
                    Outcome::error(ErrorClass::Status(503))
                } else {
                    Outcome::ok(7)
                }
            }
        }
    };
    let r = load::run(&closed(8, None, Some(1000)), &factory, &CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(calls.load(Ordering::Relaxed), 1000);
    assert_eq!(r.recorder.requests(), 1000);
    assert_eq!(r.recorder.errors().by_name()["status_503"], 100);
    assert_eq!(r.recorder.bytes(), 900 * 7);
    // Error responses still have a latency; the lag histogram stays empty.
    assert_eq!(r.recorder.latency().len(), 1000);
    assert!(r.recorder.lag().is_empty());
    assert!(!r.interrupted);
}

#[tokio::test]
async fn open_loop_sends_every_scheduled_request_and_records_lag() {
    let spec = ScheduleSpec::constant(2000.0).for_requests(300);
    let cfg = RunConfig {
        mode: Mode::Open(OpenLoop {
            schedule: spec,
            workers: 4,
            backlog: 1000,
        }),
        timeout: None,
        stop_grace: Duration::from_millis(500),
    };
    let factory = |_w: usize| || async { Outcome::ok(1) };
    let r = load::run(&cfg, &factory, &CancellationToken::new()).await.expect("run");
    assert_eq!(r.scheduled, Some(300));
    assert_eq!(r.recorder.requests(), 300);
    assert_eq!(r.recorder.dropped(), 0);
    assert_eq!(r.recorder.lag().len(), 300);
}

#[tokio::test]
async fn open_loop_counts_requests_beyond_the_cap_as_dropped_not_delayed() {
    // One worker whose requests take 200 ms, 50 requests due within 50 ms, no backlog:
    // the first is sent, the rest find the only worker busy and are dropped.
    let cfg = RunConfig {
        mode: Mode::Open(OpenLoop {
            schedule: ScheduleSpec::constant(1000.0).for_requests(50),
            workers: 1,
            backlog: 0,
        }),
        timeout: None,
        stop_grace: Duration::from_secs(2),
    };
    let factory = |_w: usize| {
        || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Outcome::ok(0)
        }
    };
    let r = load::run(&cfg, &factory, &CancellationToken::new()).await.expect("run");
    let rec = &r.recorder;
    assert_eq!(r.scheduled, Some(50));
    assert_eq!(
        rec.requests() + rec.dropped(),
        50,
        "every instant is either sent or dropped"
    );
    assert!(rec.dropped() >= 40, "dropped {}", rec.dropped());
    assert_eq!(rec.late(), 0);
}

#[tokio::test]
async fn cancellation_stops_both_loops_and_returns_partial_results() {
    for open in [false, true] {
        let cfg = if open {
            RunConfig {
                mode: Mode::Open(OpenLoop {
                    schedule: ScheduleSpec::constant(200.0).for_duration(Duration::from_secs(600)),
                    workers: 2,
                    backlog: 100,
                }),
                timeout: None,
                stop_grace: Duration::from_millis(200),
            }
        } else {
            RunConfig {
                stop_grace: Duration::from_millis(200),
                ..closed(4, Some(Duration::from_secs(600)), None)
            }
        };
        // Some requests never finish: the stop must not wait for them.
        let count = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&count);
        let factory = move |_w: usize| {
            let c = Arc::clone(&c);
            move || {
                let n = c.fetch_add(1, Ordering::Relaxed);
                async move {
                    if n > 0 && n.is_multiple_of(50) {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Outcome::ok(1)
                }
            }
        };
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            trigger.cancel();
        });
        // The outer timeout only turns a hang into a failure; it is not a measurement.
        let r = tokio::time::timeout(Duration::from_secs(60), load::run(&cfg, &factory, &cancel))
            .await
            .expect("the run stops after cancellation")
            .expect("run");
        canceller.await.expect("canceller");
        assert!(r.interrupted, "open={open}");
        assert!(r.recorder.requests() > 0, "open={open}: partial results are kept");
        assert!(r.abandoned >= 1, "open={open}: the hung requests were abandoned");
    }
}

#[tokio::test]
async fn unbounded_or_empty_runs_are_refused() {
    let factory = |_w: usize| || async { Outcome::ok(0) };
    let none = CancellationToken::new();
    assert!(matches!(
        load::run(&closed(1, None, None), &factory, &none).await,
        Err(load::LoadError::Unbounded)
    ));
    assert!(matches!(
        load::run(&closed(0, None, Some(1)), &factory, &none).await,
        Err(load::LoadError::NoWorkers)
    ));
    let open = RunConfig {
        mode: Mode::Open(OpenLoop {
            schedule: ScheduleSpec::constant(10.0),
            workers: 1,
            backlog: 0,
        }),
        timeout: None,
        stop_grace: Duration::ZERO,
    };
    assert!(matches!(
        load::run(&open, &factory, &none).await,
        Err(load::LoadError::Schedule(_))
    ));
}

/// A server whose `/` answers at once, except the `stall_at`-th request, which it
/// holds for `stall`.
fn stalling_server(host: &ServerHost, stall_at: u64, stall: Duration) -> (gateprobe::server::Server, SocketAddr) {
    let seen = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/",
        get(move || {
            let n = seen.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == stall_at {
                    tokio::time::sleep(stall).await;
                }
                "ok"
            }
        }),
    );
    let server = host.serve("127.0.0.1:0".parse().expect("addr"), router).expect("serve");
    let addr = server.addr();
    (server, addr)
}

async fn http_factory(addr: SocketAddr) -> HttpFactory {
    let spec = HttpRequestSpec {
        url: format!("http://{addr}/").parse().expect("url"),
        method: http::Method::GET,
        headers: Vec::new(),
        body: bytes::Bytes::new(),
    };
    HttpFactory::new(HttpTarget::resolve(&spec).await.expect("resolve"), ClientKind::Lean).expect("factory")
}

#[test]
fn coordinated_omission_a_stall_shows_in_corrected_latency_not_in_service_time() {
    // The server runs on its own runtime, as the style guide asks, so the generator
    // cannot starve it and vice versa.
    let host = ServerHost::new(1).expect("host");
    let (_server, addr) = stalling_server(&host, 50, Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let r = rt.block_on(async {
        let factory = http_factory(addr).await;
        // One connection at 100 req/s for 3 s: while request 50 stalls for 1 s, the
        // ~100 requests due meanwhile wait for the connection (a closed-loop client
        // would simply not have sent them: coordinated omission).
        let cfg = RunConfig {
            mode: Mode::Open(OpenLoop {
                schedule: ScheduleSpec::constant(100.0).for_duration(Duration::from_secs(3)),
                workers: 1,
                backlog: 1000,
            }),
            timeout: Some(Duration::from_secs(10)),
            stop_grace: Duration::from_secs(5),
        };
        load::run(&cfg, &factory, &CancellationToken::new()).await.expect("run")
    });
    let rec = &r.recorder;
    assert_eq!(rec.requests(), 300, "{:?}", rec.errors());
    assert_eq!(rec.ok(), 300);
    let corrected_p99 = rec.latency().value_at_quantile(0.99);
    let service_p50 = rec.service().value_at_quantile(0.5);
    let service_p99 = rec.service().value_at_quantile(0.99);
    // Only one request was slow, so the service-time p99 does not see it...
    assert!(service_p50 < 100_000, "service p50 {service_p50} us");
    // ...but the ~100 requests queued behind it were late by up to a second, which the
    // corrected latency shows: its p99 is in the hundreds of milliseconds.
    assert!(corrected_p99 >= 300_000, "corrected p99 {corrected_p99} us");
    assert!(
        corrected_p99 > 10 * service_p99.max(1_000),
        "corrected p99 {corrected_p99} vs service p99 {service_p99}"
    );
    assert!(rec.late() >= 50, "late {}", rec.late());
    // The stall is the target's, not the generator's: the lag check still passes
    // with a generous threshold (this is about attribution, not speed).
    assert!(LagCheck::judge(rec, Duration::from_millis(200)).valid);
}

#[test]
fn closed_loop_http_against_a_local_server() {
    let host = ServerHost::new(1).expect("host");
    let (_server, addr) = stalling_server(&host, u64::MAX, Duration::ZERO);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let r = rt.block_on(async {
        let factory = http_factory(addr).await;
        load::run(&closed(4, None, Some(200)), &factory, &CancellationToken::new())
            .await
            .expect("run")
    });
    assert_eq!(r.recorder.requests(), 200);
    assert_eq!(r.recorder.ok(), 200);
    assert_eq!(r.recorder.bytes(), 400);
    assert_eq!(r.recorder.ttfb().len(), 200);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    // Bind, learn a free port, close it: nothing listens there now.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let r = rt.block_on(async {
        let factory = http_factory(addr).await;
        load::run(&closed(2, None, Some(10)), &factory, &CancellationToken::new())
            .await
            .expect("run")
    });
    assert_eq!(r.recorder.errors().by_name()["connect"], 10);
    assert_eq!(r.recorder.latency().len(), 0);
}

#[tokio::test]
async fn hung_requests_time_out_and_the_worker_carries_on() {
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    let factory = move |_w: usize| {
        let c = Arc::clone(&c);
        move || {
            let n = c.fetch_add(1, Ordering::Relaxed);
            async move {
                if n % 20 == 5 {
                    std::future::pending::<()>().await;
                }
                Outcome::ok(1)
            }
        }
    };
    let cfg = RunConfig {
        timeout: Some(Duration::from_millis(50)),
        ..closed(2, None, Some(100))
    };
    let r = load::run(&cfg, &factory, &CancellationToken::new()).await.expect("run");
    assert_eq!(r.recorder.requests(), 100);
    assert_eq!(r.recorder.errors().by_name()["timeout"], 5);
    assert_eq!(r.recorder.ok(), 95);
}
