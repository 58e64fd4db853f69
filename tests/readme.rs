//! The README's "Two commands", "Install" and "Getting started" shell blocks, run as
//! written by bash in an empty directory outside the clone, with the suite's
//! `gateprobe` on PATH (as `cargo install` puts it there).
//!
//! Where a block needs something this machine has not, a stand-in is named here, and
//! every text a stand-in replaces must still be in the README: a changed README fails
//! this test until its stand-in is looked at again.
//!
//! - `cargo run --release -- ARGS` and `cargo install` run the suite's debug build (a
//!   release build would take 7.5 minutes more); `cargo test` is this suite itself.
//! - `apt-get install` becomes a check that those packages are installed.
//! - GitLab's AI gateway becomes the reference gateway, started with the settings the
//!   block prints, on a free port, calling any endpoint as GitLab's does
//!   (`--allow-any-upstream`). It reports a backend's cut chat stream as an error
//!   where GitLab's gateway passes it off as complete (what profile `aigw` predicts),
//!   so exactly that check fails there.
//! - The vendor's endpoint at 127.0.0.1:8000 becomes a vLLM mock serving the block's
//!   model with the block's key, on a free port.
//! - `~/litellm` is the LiteLLM environment `.ci/run` made (`$LITELLM`); that test is
//!   `#[ignore]`d with the reason where LiteLLM is not installed.
//! - "Gate on what my instance really runs" needs a GitLab instance and is not run here;
//!   `tests/import_gitlab.rs` runs those commands against a fake GitLab.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The ```sh blocks under a `##`/`###` heading that starts with `heading`.
fn blocks(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let mut out = Vec::new();
    let mut inside = false;
    let mut block: Option<String> = None;
    for line in readme.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            let title = line.trim_start_matches('#').trim();
            // A subsection of "Getting started" is its own section here.
            inside = title.starts_with(heading);
        }
        match &mut block {
            Some(b) if line == "```" => {
                out.push(std::mem::take(b));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None if inside && line == "```sh" => block = Some(String::new()),
            None => {}
        }
    }
    assert!(!out.is_empty(), "no ```sh block under `{heading}` in README.md");
    out
}

/// Replaces each `(from, to)` once, insisting that `from` is there.
fn stand_in(block: &str, replacements: &[(&str, &str)]) -> String {
    let mut b = block.to_owned();
    for (from, to) in replacements {
        assert!(b.contains(from), "the README no longer says `{from}`:\n{block}");
        b = b.replacen(from, to, 1);
    }
    b
}

/// A shell for README blocks: an empty HOME and working directory, `gateprobe` and the
/// `cargo` stand-in first on PATH.
struct Shell {
    home: tempfile::TempDir,
    dir: tempfile::TempDir,
    path: String,
}

impl Shell {
    fn new() -> Shell {
        let home = tempfile::tempdir().expect("home");
        let dir = tempfile::tempdir().expect("dir");
        let shims = home.path().join("shims");
        std::fs::create_dir_all(&shims).expect("shims");
        let bin = Path::new(env!("CARGO_BIN_EXE_gateprobe"));
        let cargo = format!(
            "#!/bin/sh\n# The README's cargo commands, on the suite's build of gateprobe.\ncase \"$1\" in\n  run) shift; [ \"$1\" = --release ] && shift; [ \"$1\" = -- ] && shift; exec '{bin}' \"$@\" ;;\n  install) mkdir -p \"$HOME/.cargo/bin\" && cp '{bin}' \"$HOME/.cargo/bin/gateprobe\" ;;\n  test) exit 0 ;;\n  *) echo \"README stand-in: unexpected cargo $*\" >&2; exit 1 ;;\nesac\n",
            bin = bin.display()
        );
        let shim = shims.join("cargo");
        std::fs::write(&shim, cargo).expect("shim");
        let mut perms = std::fs::metadata(&shim).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&shim, perms).expect("chmod");
        let path = format!(
            "{}:{}:{}:{}",
            shims.display(),
            home.path().join(".cargo/bin").display(),
            bin.parent().expect("bin dir").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Shell { home, dir, path }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("PATH", &self.path)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        for (k, _) in std::env::vars() {
            if k.starts_with("GATEPROBE_") || k == "LITELLM" {
                c.env_remove(k);
            }
        }
        c
    }

    /// Runs a block with `bash -e -o pipefail`, within `limit`.
    fn run(&self, block: &str, limit: Duration) -> Output {
        let mut c = self.command("bash");
        c.args(["-e", "-o", "pipefail", "-c", block]);
        let out = within(c, limit);
        assert!(
            out.status.success(),
            "README block failed ({:?}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `c` in a process group of its own, killed after `limit`; whatever it left
/// running in the background (a proxy a failed block did not stop) goes with the group.
fn within(mut c: Command, limit: Duration) -> Output {
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Drain both pipes while waiting: a chatty block must not block on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut b);
        b
    });
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let stop_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            stop_group();
            let _ = child.kill();
            let _ = child.wait();
            panic!("README block did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop_group();
    Output {
        status,
        stdout: t1.join().expect("stdout"),
        stderr: t2.join().expect("stderr"),
    }
}

/// A `gateprobe` server started by the test (a stand-in), stopped on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gateprobe ARGS` in the foreground of its own process and returns it with
/// the URL its first line ends in.
fn serve(sh: &Shell, args: &[&str], env: &[(String, String)]) -> (Server, String) {
    let mut c = sh.command(env!("CARGO_BIN_EXE_gateprobe"));
    c.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("stdout")));
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL")
        .to_owned();
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Server(child), url)
}

fn failed_checks(report: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).expect("report")).expect("json");
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn two_commands_and_install() {
    let sh = Shell::new();
    let two = blocks("Two commands");
    sh.run(&two[0], Duration::from_secs(120));
    assert!(sh.file("reports/junit.xml").exists());
    // The fault run fails checks on purpose: exit 4 is its success.
    let fault = stand_in(
        &two[1],
        &[(
            "--builtin-fault reuse-first-endpoint\n",
            "--builtin-fault reuse-first-endpoint || test $? -eq 4\n",
        )],
    );
    let out = sh.run(&fault, Duration::from_secs(120));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reuse-first-endpoint"));
    let install = stand_in(
        &blocks("Install")[0],
        &[(
            "apt-get install -y gcc pkg-config libssl-dev",
            "dpkg -s gcc pkg-config libssl-dev >/dev/null",
        )],
    );
    let out = sh.run(&install, Duration::from_secs(120));
    assert!(sh.home.path().join(".cargo/bin/gateprobe").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed"));
}

#[test]
fn test_my_gitlab_ai_gateway() {
    let sh = Shell::new();
    let block = &blocks("Test my GitLab AI gateway")[0];
    // The gateway's settings, as the block's first line prints them.
    let first = block.lines().next().expect("line");
    let printed = sh.run(first, Duration::from_secs(30));
    let env: Vec<(String, String)> = String::from_utf8_lossy(&printed.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    assert!(
        env.iter()
            .any(|(k, v)| k == "AWS_BEDROCK_RUNTIME_ENDPOINT" && v == "http://127.0.0.1:18090")
    );
    // GitLab's gateway calls whatever endpoint the instance's request names (the run's
    // mocks, on ports known only once they listen): so does the stand-in.
    let (_gw, url) = serve(
        &sh,
        &[
            "gateway",
            "scenarios/aigw.yaml",
            "--listen",
            "127.0.0.1:0",
            "--allow-any-upstream",
        ],
        &env,
    );
    let block = stand_in(
        block,
        &[
            ("<a token it accepts>", "aigw-instance-token-7c1e"),
            (
                "--gateway-url http://127.0.0.1:5052\n",
                &format!("--gateway-url {url} || test $? -eq 4\n"),
            ),
        ],
    );
    sh.run(&block, Duration::from_secs(300));
    assert_eq!(
        failed_checks(&sh.file("reports/gateprobe.json")),
        ["resilience.cut-mid-stream.chat_agent"],
        "only the check where the reference gateway is stricter than GitLab's"
    );
}

/// Runs the first block under `heading` with its vendor endpoint at 127.0.0.1:8000
/// replaced by a vLLM mock serving `model` with the block's key; its output.
fn run_against_an_endpoint(sh: &Shell, heading: &str, model: &str) -> (String, String) {
    let standin = sh.home.path().join("endpoint.yaml");
    std::fs::write(
        &standin,
        format!("backends:\n  vendor:\n    provider: openai\n    models: [{model}]\n    api_key: \"...\"\n"),
    )
    .expect("write");
    let standin = standin.display().to_string();
    let (_endpoint, url) = serve(sh, &["mock", &standin, "--foreground"], &[]);
    let block = stand_in(
        &blocks(heading)[0],
        &[(
            "--gateway-url http://127.0.0.1:8000/v1",
            &format!("--gateway-url {url}/v1"),
        )],
    );
    let out = sh.run(&block, Duration::from_secs(120));
    (String::from_utf8_lossy(&out.stdout).into_owned(), url)
}

#[test]
fn validate_my_model_endpoint() {
    let sh = Shell::new();
    let (o, url) = run_against_an_endpoint(&sh, "Validate my model endpoint", "mistralai/Mistral-7B-Instruct-v0.3");
    // Both runs passed (bash -e), the second against the stand-in with the block's key.
    assert_eq!(o.matches("0 failed, 0 errors").count(), 2, "{o}");
    assert!(o.contains(&format!("model endpoint {url}/v1")), "{o}");
    assert!(sh.file("my-endpoint.yaml").exists());
}

#[test]
fn is_my_model_ready_for_duo() {
    let sh = Shell::new();
    let (o, _) = run_against_an_endpoint(
        &sh,
        "Is my model ready for Duo?",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
    );
    assert_eq!(o.matches("0 failed, 0 errors").count(), 2, "{o}");
    assert!(o.contains("readiness"), "{o}");
}

#[test]
#[ignore = "needs LiteLLM: LITELLM=path/to/venv/bin/litellm cargo test -- --include-ignored (.ci/run does)"]
fn test_my_litellm_proxy() {
    let litellm = PathBuf::from(std::env::var("LITELLM").expect("LITELLM names the litellm of a virtual environment"));
    let venv = litellm.parent().and_then(Path::parent).expect("venv/bin/litellm");
    let sh = Shell::new();
    // `~/litellm` is that environment: the block's venv and pip steps find it made.
    std::os::unix::fs::symlink(venv, sh.home.path().join("litellm")).expect("symlink");
    let b = blocks("Test my LiteLLM proxy");
    let out = sh.run(&b[0], Duration::from_secs(600));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed, 0 errors"));
    let deployed = stand_in(
        &b[1],
        &[(
            "--config-fault strip-v1   # exits 4: the suite catches a broken config",
            "--config-fault strip-v1 || test $? -eq 4",
        )],
    );
    let out = sh.run(&deployed, Duration::from_secs(600));
    let o = String::from_utf8_lossy(&out.stdout);
    assert!(
        o.contains("scenario my-litellm") && o.contains("0 failed, 0 errors"),
        "{o}"
    );
    assert!(
        !failed_checks(&sh.file("reports/gateprobe.json")).is_empty(),
        "strip-v1 fails checks"
    );
}
