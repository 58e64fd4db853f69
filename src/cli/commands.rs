//! What each subcommand does, from typed arguments to an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Command, ExportArgs, GatewayArgs, RunArgs, exit};
use crate::gateway::hostile::{Hostile, HostileGateway};
use crate::gateway::{self, Fault, GatewaySettings};
use crate::report::{self, RunReport, console};
use crate::run::{self, RunOptions};
use crate::scenario::{self, Scenario};
use crate::server::ServerHost;

pub(super) fn dispatch(cmd: Command) -> u8 {
    match cmd {
        Command::Run(a) => run_cmd(a),
        Command::Validate { scenarios } => validate_cmd(&scenarios),
        Command::Schema { report } => {
            let v = if report {
                report::json_schema()
            } else {
                scenario::json_schema()
            };
            say(serde_json::to_string_pretty(&v).unwrap_or_default());
            exit::OK
        }
        Command::Gateway(a) => gateway_cmd(a),
        Command::Mock(a) => super::mock::mock_cmd(a),
        Command::Init(a) => super::setup::init_cmd(a),
        Command::Completions { shell } => super::setup::completions_cmd(shell),
        Command::Man { dir } => super::setup::man_cmd(dir.as_deref()),
        Command::Bench(a) => super::bench::bench_cmd(a),
        Command::Merge(a) => super::reports::merge_cmd(a),
        Command::Compare(a) => super::reports::compare_cmd(a),
        Command::Export(a) => export_cmd(a),
        Command::Import(s) => super::import::import_cmd(s),
    }
}

fn faults(names: &[String]) -> Vec<Fault> {
    names.iter().filter_map(|n| Fault::from_name(n)).collect()
}

/// Loads a scenario file or, when no file of that name exists, the built-in scenario
/// or mock profile it names (`quickstart`, `scenarios/quickstart.yaml`).
pub(super) fn open_scenario(path: &Path) -> Result<Scenario, u8> {
    load_or_builtin(path).map_err(|e| {
        eprint!("{e}");
        exit::INVALID_SCENARIO
    })
}

fn load_or_builtin(path: &Path) -> Result<Scenario, scenario::error::ScenarioError> {
    match scenario::builtin::find(path) {
        Some(b) => {
            if b.path == path.to_string_lossy().trim_start_matches("./") {
                eprintln!(
                    "note: {} is not in this directory: using the copy built into gateprobe",
                    path.display()
                );
            }
            scenario::load_builtin(b)
        }
        None => scenario::load(path),
    }
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, u8> {
    let mut out = Vec::new();
    let mut bad = false;
    for p in paths {
        match load_or_builtin(p) {
            Ok(s) => out.push(s),
            Err(e) => {
                eprint!("{e}");
                bad = true;
            }
        }
    }
    if bad { Err(exit::INVALID_SCENARIO) } else { Ok(out) }
}

pub(super) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// A token cancelled by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT.
pub(super) fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        // Not eprintln!: after SIGHUP the terminal may be gone, and a failed write
        // must not stop the reports from being finished.
        let _ = writeln!(std::io::stderr(), "interrupted: finishing reports");
        t.cancel();
    });
    token
}

/// Waits for any signal that asks gateprobe to stop: SIGINT (Ctrl-C), SIGTERM (a CI
/// runner cancelling a job), SIGHUP (a closed terminal or SSH session) and SIGQUIT.
/// Each is handled the same way: the run stops, its reports are written and a
/// launched gateway is stopped. (Left to their default action, SIGHUP and SIGQUIT end
/// the process at once, reports unwritten and the gateway left running.)
pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [SignalKind::terminate(), SignalKind::hangup(), SignalKind::quit()];
        let streams: Vec<_> = kinds.into_iter().filter_map(|k| signal(k).ok()).collect();
        if !streams.is_empty() {
            let any = futures_util::future::select_all(
                streams.into_iter().map(|mut s| Box::pin(async move { s.recv().await })),
            );
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = any => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn run_cmd(a: RunArgs) -> u8 {
    let mut scenarios = match load_all(&a.scenarios) {
        Ok(s) => s,
        Err(code) => return code,
    };
    for s in &mut scenarios {
        for entry in &a.checks {
            if let Err(e) = s.select(entry) {
                eprintln!("error: --check {entry}: {}\n  = help: {}", e.message, e.hint);
                return exit::USAGE;
            }
        }
    }
    for s in &scenarios {
        if !s.gateway.tls.verify {
            eprintln!(
                "warning: {}: TLS certificates are not verified (gateway.tls.verify: false); anyone on the path can read and answer this traffic",
                s.path.display()
            );
        }
        if crate::check::compile(s).checks.is_empty() && s.load.is_empty() {
            eprintln!(
                "error: {} has nothing to check or load (no self_hosted_models, no check family applies, no `load:`)\n  = help: a file with only `backends:` is a mock profile: start it with `gateprobe mock`",
                s.path.display()
            );
            return exit::INVALID_SCENARIO;
        }
    }
    // Test hook (debug builds only): a panic whose message quotes a scenario's secrets,
    // to show the panic hook redacts them.
    #[cfg(debug_assertions)]
    if std::env::var_os("GATEPROBE_DEBUG_PANIC").is_some() {
        let all: Vec<&str> = scenarios
            .iter()
            .flat_map(|s| s.secrets.iter().map(|(_, v)| v.as_str()))
            .collect();
        panic!("debug panic quoting the scenario's secrets: {all:?}");
    }
    // One directory per scenario when several run, named safely (a name cannot climb
    // out of --report-dir, and two scenarios of one name do not share one).
    let dirs: Vec<PathBuf> = if scenarios.len() > 1 {
        crate::files::safe_names(scenarios.iter().map(|s| s.name.as_str()), "", &[])
            .into_iter()
            .map(|n| a.report_dir.join(n))
            .collect()
    } else {
        vec![a.report_dir.clone()]
    };
    // Where reports go is found unusable before the run, not after it.
    for dir in dirs.iter().chain(&a.record) {
        if let Err(e) = writable_dir(dir) {
            eprintln!("error: cannot write reports to {}: {e}", dir.display());
            return exit::HARNESS;
        }
    }
    let transcripts = crate::files::safe_names(scenarios.iter().map(|s| s.name.as_str()), ".transcript.json", &[]);
    let Some(rt) = runtime() else { return exit::HARNESS };
    let mut code = exit::OK;
    rt.block_on(async {
        let cancel = interrupt_token();
        for ((s, dir), transcript_file) in scenarios.iter().zip(dirs).zip(&transcripts) {
            let opts = RunOptions {
                seed: Some(a.seed.unwrap_or_else(run::fresh_seed)),
                shard: a.shard.or_else(|| super::shard_from_env(|k| std::env::var(k).ok())),
                gateway_url: a.gateway_url.clone(),
                faults: faults(&a.faults),
                work_dir: Some(dir.clone()),
                config_faults: a
                    .config_faults
                    .iter()
                    .filter_map(|n| crate::export::ConfigFault::from_name(n))
                    .collect(),
            };
            let (report, transcript) = run::run_recorded(s, &opts, &cancel).await;
            code = code.max(emit(&report, &dir, a.verbose));
            if let (Some(rec), Some(t)) = (&a.record, transcript) {
                code = code.max(write_transcript(&rec.join(transcript_file), &t));
            }
            if cancel.is_cancelled() {
                // Interrupted between runs too: the scenarios left out were not
                // passed, so the run is not a success.
                code = code.max(exit::HARNESS);
                break;
            }
        }
    });
    code
}

/// Creates `dir` (and its parents) and makes sure a file can be created in it.
pub(super) fn writable_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".gateprobe-write-test-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Writes a transcript to `path` (`DIR/<scenario>.transcript.json`).
fn write_transcript(path: &Path, t: &crate::transcript::Transcript) -> u8 {
    let dir = path.parent().unwrap_or(Path::new("."));
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let text = serde_json::to_vec_pretty(t).map_err(std::io::Error::other)?;
        report::write_atomic(path, &text)
    });
    match written {
        Ok(p) => {
            say(format_args!("transcript: {}", p.display()));
            exit::OK
        }
        Err(e) => {
            eprintln!("error: cannot write the transcript to {}: {e}", path.display());
            exit::HARNESS
        }
    }
}

/// Prints the console summary, writes the report files, and returns the exit code.
fn emit(report: &RunReport, dir: &Path, verbose: bool) -> u8 {
    // Files first: a closed stdout (`| head`) must not cost the reports.
    let written = report::write_all(report, dir);
    say(console::render(report, verbose).trim_end());
    match written {
        Ok(paths) => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            say(format_args!("reports: {}", names.join(", ")));
        }
        Err(e) => {
            eprintln!("error: cannot write reports to {}: {e}", dir.display());
            return exit::HARNESS;
        }
    }
    super::exit::of(report.verdict())
}

/// Prints a line to stdout, ignoring a closed pipe (`gateprobe ... | head`).
pub(super) fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn validate_cmd(paths: &[PathBuf]) -> u8 {
    let mut code = exit::OK;
    for p in paths {
        match load_or_builtin(p) {
            Ok(s) => {
                let plan = crate::check::compile(&s);
                // What `run` refuses, validate must not call fine.
                if plan.checks.is_empty() && s.load.is_empty() {
                    if s.models.is_empty() && !s.backends.is_empty() {
                        say(format_args!(
                            "ok: {} is a mock profile ({} backends): start it with `gateprobe mock {}`; `gateprobe run` has nothing to check in it",
                            p.display(),
                            s.backends.len(),
                            p.display()
                        ));
                    } else {
                        eprintln!(
                            "error: {} has nothing to check or load (no self_hosted_models, no check family applies, no `load:`)\n  = help: `gateprobe run` refuses it; add self_hosted_models and features (gateprobe init --list)",
                            p.display()
                        );
                        code = exit::INVALID_SCENARIO;
                    }
                    continue;
                }
                say(format_args!(
                    "ok: {} ({} backends, {} models, {} features, {} checks planned)",
                    p.display(),
                    s.backends.len(),
                    s.models.len(),
                    s.features.len(),
                    plan.checks.len()
                ));
            }
            Err(e) => {
                eprint!("{e}");
                code = exit::INVALID_SCENARIO;
            }
        }
    }
    code
}

fn warn_if_exposed(addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        eprintln!("warning: listening on {addr}, which is not a loopback address; anyone who can reach it can use it");
    }
}

fn gateway_cmd(a: GatewayArgs) -> u8 {
    if a.list_faults {
        for f in Fault::ALL {
            say(format_args!("{:<30} {}", f.name(), f.breaks()));
        }
        return exit::OK;
    }
    if a.list_hostile {
        for h in Hostile::ALL {
            say(format_args!("{:<22} {}", h.name(), h.does()));
        }
        return exit::OK;
    }
    if let Some(mode) = a.hostile.as_deref().and_then(Hostile::from_name) {
        return hostile_cmd(mode, a.listen);
    }
    let Some(path) = a.scenario else { return exit::USAGE };
    let s = match load_one(&path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The OpenAI front serves the scenario's aliases, with the mocks' addresses as
    // `gateprobe mock` exports them; only those backends are called unless told otherwise.
    let features =
        crate::gateway::FeatureMap::of(&s, &|n| backend_url_from_env(n).or_else(|| fixed_backend_url(&s, n)));
    let upstreams = (!a.allow_any_upstream).then(|| features.origins());
    match &upstreams {
        None => eprintln!("note: --allow-any-upstream: calls whatever endpoint a request names"),
        Some(o) if o.is_empty() => eprintln!(
            "note: no backend of the scenario has a known address (a `port:`, or the GATEPROBE_BACKEND_*_URL `gateprobe mock` prints): every upstream call is refused; --allow-any-upstream lifts this"
        ),
        Some(o) => eprintln!("note: calls only {} (--allow-any-upstream lifts this)", o.join(", ")),
    }
    let settings = GatewaySettings {
        aws: crate::gateway::bedrock::AwsSettings::from_env(),
        auth: s.gateway.builtin_auth,
        token: s.gateway.token.clone(),
        faults: faults(&a.faults),
        upstream_timeout: s.gateway.timeout,
        upstreams,
        features,
        // `{{ mocks.* }}` are the files of the `gateprobe mock` that exported them.
        upstream_tls: match mock_tls_from_env(&s.gateway.tls) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID_SCENARIO;
            }
        },
    };
    let result = (|| -> Result<(), String> {
        let host = ServerHost::new(2).map_err(|e| e.to_string())?;
        let router = gateway::router(settings).map_err(|e| e.to_string())?;
        warn_if_exposed(a.listen);
        let server = host
            .serve(a.listen, router)
            .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
        say(format_args!(
            "gateprobe reference gateway listening on {}",
            server.url()
        ));
        serve_until_signal()?;
        drop(server);
        Ok(())
    })();
    finish_serving(result)
}

/// Waits for Ctrl-C or SIGTERM while servers run on their own host.
fn hostile_cmd(mode: Hostile, listen: std::net::SocketAddr) -> u8 {
    let result = (|| -> Result<(), String> {
        let host = ServerHost::new(1).map_err(|e| e.to_string())?;
        warn_if_exposed(listen);
        let server = HostileGateway::start(mode, listen, &host.handle())
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        say(format_args!(
            "gateprobe hostile gateway ({}: {}) listening on {}",
            mode.name(),
            mode.does(),
            server.url()
        ));
        serve_until_signal()?;
        drop(server);
        Ok(())
    })();
    finish_serving(result)
}

fn serve_until_signal() -> Result<(), String> {
    let rt = runtime().ok_or("no runtime")?;
    rt.block_on(wait_for_signal());
    Ok(())
}

pub(super) fn finish_serving(result: Result<(), String>) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::HARNESS
        }
    }
}

fn load_one(path: &Path) -> Result<Scenario, u8> {
    open_scenario(path)
}

/// A mock's address as `gateprobe mock` exports it: `$GATEPROBE_BACKEND_<NAME>_URL`.
fn backend_url_from_env(name: &str) -> Option<String> {
    std::env::var(crate::mock::url_var(name)).ok()
}

/// `tls` with its `{{ mocks.* }}` references read from the files `gateprobe mock`
/// exported (`GATEPROBE_MOCK_CA`, `GATEPROBE_MOCK_CLIENT_CERT`, `GATEPROBE_MOCK_CLIENT_KEY`).
fn mock_tls_from_env(tls: &crate::scenario::Tls) -> Result<crate::scenario::Tls, String> {
    use crate::scenario::ClientIdentity;
    let read = |var: &str| -> Result<Vec<u8>, String> {
        let path = std::env::var(var).map_err(|_| {
            format!("the scenario's gateway.tls names {{{{ mocks.* }}}}, but {var} is not set: run `eval \"$(gateprobe mock SCENARIO)\"` in this shell first")
        })?;
        std::fs::read(&path).map_err(|e| format!("cannot read {var}={path}: {e}"))
    };
    let mut t = tls.clone();
    if t.mock_ca {
        let mut pem = t.ca_pem.take().unwrap_or_default();
        pem.push(b'\n');
        pem.extend(read(crate::mock::tls::CA_VAR)?);
        t.ca_pem = Some(pem);
        t.mock_ca = false;
    }
    if matches!(t.identity, Some(ClientIdentity::Mocks)) {
        t.identity = Some(ClientIdentity::Pem {
            cert: read(crate::mock::tls::CLIENT_CERT_VAR)?,
            key: read(crate::mock::tls::CLIENT_KEY_VAR)?,
        });
    }
    Ok(t)
}

/// A mock's address when the scenario fixes its port.
fn fixed_backend_url(s: &Scenario, name: &str) -> Option<String> {
    s.backends.iter().find(|b| b.name == name)?.fixed_url()
}

fn export_cmd(a: ExportArgs) -> u8 {
    let s = match load_one(&a.scenario) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut given = Vec::new();
    for b in &a.backends {
        let Some((name, url)) = b.split_once('=') else {
            eprintln!("error: --backend takes NAME=URL, got `{b}`");
            return exit::USAGE;
        };
        given.push((name.to_owned(), url.to_owned()));
    }
    let url = |name: &str| {
        given
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.clone())
            .or_else(|| backend_url_from_env(name))
            .or_else(|| fixed_backend_url(&s, name))
    };
    let opts = crate::export::ExportOptions {
        keep_defaults: a.keep_defaults,
        inline_secrets: a.inline_secrets,
        faults: a
            .config_faults
            .iter()
            .filter_map(|n| crate::export::ConfigFault::from_name(n))
            .collect(),
    };
    let written = match crate::export::litellm(&s, &url, &opts) {
        Ok(w) => w,
        Err(e) => {
            eprintln!(
                "error: {e}\n  = help: give the backend a fixed `port:` in the scenario, start the mocks with `eval \"$(gateprobe mock {})\"` in this shell, or pass --backend NAME=URL",
                a.scenario.display()
            );
            return exit::INVALID_SCENARIO;
        }
    };
    match &a.output {
        Some(p) => {
            if let Err(e) = crate::report::write_atomic(p, written.yaml.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return exit::HARNESS;
            }
            eprintln!("wrote {}", p.display());
        }
        None => say(written.yaml.trim_end()),
    }
    if !written.env.is_empty() {
        eprintln!("the proxy reads these from its environment (values as in the scenario):");
        for (var, _, what) in &written.env {
            eprintln!("  {var}: {what}");
        }
    }
    exit::OK
}
