//! The AI gateway client against a server that closes each connection after its reply
//! without saying so (uvicorn after a bare 500): every request still gets its reply,
//! on a connection of its own, and none is sent twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateprobe::adapter::aigw::{AigwClient, FeatureRequest};
use gateprobe::adapter::{ClientAuth, ModelFields, Tls};
use gateprobe::instance::Shapes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with a bare 500 and closes the connection shortly after,
/// without `Connection: close`, never reading a second request. Counts the requests
/// it read.
async fn closing_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body its Content-Length announces.
                loop {
                    let Ok(n) = tcp.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tcp
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n\r\nInternal Server Error")
                    .await;
                // Closed a moment later, without `Connection: close`: a client that
                // reuses the connection has sent its next request into it by then.
                tokio::time::sleep(Duration::from_millis(30)).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_closes_after_each_reply_does_not_fail_the_next_request() {
    let (url, seen) = closing_server().await;
    let client = AigwClient::new(
        &url,
        None,
        vec![],
        Duration::from_secs(5),
        &Tls::default(),
        Shapes::CURRENT,
    )
    .expect("client");
    let fields = ModelFields {
        family: "mixtral".into(),
        endpoint: "http://127.0.0.1:9/v1".into(),
        api_key: None,
        identifier: "custom_openai/m".into(),
    };
    let feature = gateprobe::feature::by_name("code_completions").expect("feature");
    for i in 0..20 {
        let cid = format!("gp-0000abcd-{i}");
        let reply = client
            .send(&FeatureRequest {
                feature,
                model: &fields,
                stream: false,
                auth: ClientAuth::Valid,
                correlation_id: &cid,
            })
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(reply.status, 500);
    }
    assert_eq!(seen.load(Ordering::SeqCst), 20, "each request sent exactly once");
}
