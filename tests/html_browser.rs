//! `report.html` in a real browser: headless Chromium parses the page (its DOM holds
//! every chart) and renders a screenshot of it, offline. `#[ignore]`d with the reason
//! (`cargo test` lists it as ignored): `cargo test -- --include-ignored` runs it, and
//! fails where `chromium` is not installed (`apt-get install -y chromium`); set
//! `GATEPROBE_SCREENSHOT=/path/shot.png` to keep the screenshot and look at it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateprobe::report::html;

const WIDTH: u32 = 1280;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs headless Chromium on `page` with `args`, killing it after a minute, and
/// returns its stdout.
fn headless(bin: &str, profile: &Path, page: &Path, args: &[&str]) -> Vec<u8> {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader")
}

#[test]
#[ignore = "needs Chromium (apt-get install chromium): cargo test -- --include-ignored (.ci/run does)"]
fn report_html_renders_in_headless_chromium() {
    let bin = chromium().expect("chromium is not installed (apt-get install -y chromium)");
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    let r = common::sample();
    std::fs::write(&page, html::render(&r)).expect("write");
    let profile = tempfile::tempdir().expect("profile");

    let dom = String::from_utf8_lossy(&headless(bin, profile.path(), &page, &["--dump-dom"])).into_owned();
    assert_eq!(dom.matches("<svg").count(), 17, "the browser's DOM holds every chart");
    assert!(dom.contains("capacity 40.0 req/s"));
    assert!(dom.contains("code &lt;sweep&gt;"));

    let shot = dir.path().join("shot.png");
    headless(
        bin,
        profile.path(),
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            &format!("--window-size={WIDTH},2400"),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    assert_eq!(width, WIDTH);
    // A blank page compresses to almost nothing; charts and text do not.
    assert!(png.len() > 50_000, "screenshot is {} bytes", png.len());
    if let Some(keep) = std::env::var_os("GATEPROBE_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("keep screenshot");
        std::fs::copy(&page, Path::new(&keep).with_extension("html")).expect("keep page");
    }
}
