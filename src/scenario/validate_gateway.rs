//! Validation of the `gateway:` block: kind, URL, client auth, the gateway profile,
//! the OpenAI-proxy settings (`features_by`, `aliases`, `endpoint_variants`) and a
//! `launch` block whose strings may name backends and `{{ launch.* }}` values.

use std::path::Path;
use std::time::Duration;

use super::error::ScenarioError;
use super::profile::Profile;
use super::raw::{Located, Pos, ScenarioFile};
use super::template::{Template, interpolate_in};
use super::validate::Ctx;
use super::{BuiltinAuth, FeaturesBy, GatewayConfig, GatewayKind, LaunchConfig, LaunchConfigKind};
use crate::redact::is_secret_name;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn gateway(
    cx: &mut Ctx<'_>,
    file: &ScenarioFile,
    shapes: crate::instance::Shapes,
) -> Result<GatewayConfig, ScenarioError> {
    let g = &file.gateway;
    let kind = match &g.kind {
        None => GatewayKind::Builtin,
        Some(k) => match cx.one_of(
            k,
            "gateway.kind",
            "gateway kind",
            &["builtin", "aigw", "openai", "direct"],
        )? {
            "aigw" => GatewayKind::Aigw,
            "direct" => GatewayKind::Direct,
            "openai" => GatewayKind::Openai,
            _ => GatewayKind::Builtin,
        },
    };
    let url = match (&g.url, &g.launch) {
        (Some(u), None) => Some(cx.string(u, "gateway.url", None)?),
        _ => None,
    };
    if let (Some(u), Some(raw)) = (&url, &g.url)
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(cx
            .err(
                raw.pos,
                "gateway.url",
                "the gateway URL does not start with http:// or https://",
            )
            .hint("write the gateway's base URL, e.g. http://127.0.0.1:5052"));
    }
    if let Some(u) = &url {
        cx.url_secrets("gateway.url", u);
    }
    let token = g
        .auth
        .token
        .as_ref()
        .map(|t| cx.string(t, "gateway.auth.token", Some("gateway token")))
        .transpose()?;
    let mut headers = Vec::new();
    for (k, v) in &g.auth.headers.0 {
        let field = format!("gateway.auth.headers.{}", k.value);
        let is_secret = secret_header(&k.value);
        let value = cx.string(v, &field, is_secret.then_some(field.as_str()))?;
        headers.push((k.value.clone(), value));
    }
    let timeout = match &g.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => cx.timeout(t, "gateway.timeout")?,
    };
    let builtin_auth = match &g.builtin.auth {
        None => BuiltinAuth::Enforce,
        Some(a) => match cx.one_of(
            a,
            "gateway.builtin.auth",
            "auth mode",
            &["enforce", "bypass", "bypass_with_header"],
        )? {
            "bypass" => BuiltinAuth::Bypass,
            "bypass_with_header" => BuiltinAuth::BypassWithHeader,
            _ => BuiltinAuth::Enforce,
        },
    };
    let profile = match &g.profile {
        None => Profile::builtin(match (kind, shapes) {
            (GatewayKind::Openai, _) => "openai",
            (_, crate::instance::Shapes::V17_7) => "aigw-17.7",
            _ => "aigw",
        }),
        Some(p) => {
            let name = cx.string(p, "gateway.profile", None)?;
            if name.ends_with(".yaml") || name.ends_with(".yml") || name.contains('/') {
                let base = cx.path.parent().unwrap_or(Path::new("."));
                let named = format!("{}:{}:{}", cx.path.display(), p.pos.line, p.pos.col);
                Some(Profile::load(&base.join(&name)).map_err(|e| {
                    let hint = e.hint.clone().unwrap_or_default();
                    let sep = if hint.is_empty() { "" } else { "; " };
                    // A scenario may name any file here: its content is never shown.
                    e.without_content().hint(format!(
                        "{hint}{sep}the profile is named by gateway.profile at {named} (its content is not shown)"
                    ))
                })?)
            } else {
                let names = super::profile::BUILTIN.map(|(n, _)| n);
                cx.one_of(p, "gateway.profile", "gateway profile", &names)?;
                Profile::builtin(&name)
            }
        }
    };
    let Some(profile) = profile else {
        return Err(ScenarioError::whole_file(
            cx.path,
            "a built-in gateway profile does not parse",
        ));
    };
    let openai_only = |cx: &Ctx<'_>, field: &str, pos: Pos| -> Result<(), ScenarioError> {
        if kind == GatewayKind::Openai {
            Ok(())
        } else {
            Err(cx
                .err(
                    pos,
                    format!("gateway.{field}"),
                    format!("`{field}` only applies to `kind: openai`"),
                )
                .hint("remove it, or set `gateway.kind: openai`"))
        }
    };
    let features_by = match &g.features_by {
        None => FeaturesBy::Model,
        Some(f) => {
            openai_only(cx, "features_by", f.pos)?;
            match cx.one_of(f, "gateway.features_by", "mapping", &["model", "feature"])? {
                "feature" => FeaturesBy::Feature,
                _ => FeaturesBy::Model,
            }
        }
    };
    let mut aliases = Vec::new();
    for (k, v) in &g.aliases.0 {
        openai_only(cx, "aliases", k.pos)?;
        let value = cx.string(v, &format!("gateway.aliases.{}", k.value), None)?;
        aliases.push((k.value.clone(), value));
    }
    let launch = match &g.launch {
        None => None,
        Some(l) => {
            if !matches!(kind, GatewayKind::Aigw | GatewayKind::Openai) {
                let pos = l.value.command.first().map_or(l.pos, |c| c.pos);
                return Err(cx
                    .err(
                        pos,
                        "gateway.launch",
                        "only `aigw` and `openai` gateways can be launched",
                    )
                    .hint("set `gateway.kind: openai` (or `aigw`)"));
            }
            let tls_mocks = file.backends.0.iter().any(|(_, b)| b.tls.is_some());
            Some(launch(
                cx,
                &l.value,
                l.pos,
                g.url.as_ref(),
                (token.is_some(), tls_mocks),
            )?)
        }
    };
    if g.endpoint_variants.is_some() {
        let pos = g.kind.as_ref().map(|k| k.pos).unwrap_or_default();
        openai_only(cx, "endpoint_variants", pos)?;
    }
    let endpoint_variants = g
        .endpoint_variants
        .unwrap_or_else(|| launch.as_ref().is_some_and(|l| l.config.is_some()));
    // `{{ mocks.* }}` names files of the run's TLS mocks, for the connections gateprobe's
    // own code opens to them: the built-in gateway's and the direct client's.
    let own_upstream = match kind {
        GatewayKind::Builtin | GatewayKind::Direct => true,
        GatewayKind::Openai => g.url.is_none() && g.launch.is_none(),
        GatewayKind::Aigw => false,
    };
    let tls_mocks = file.backends.0.iter().any(|(_, b)| b.tls.is_some());
    let tls = tls(cx, &g.tls, own_upstream, tls_mocks)?;
    Ok(GatewayConfig {
        kind,
        url,
        token,
        headers,
        timeout,
        builtin_auth,
        profile,
        features_by,
        aliases,
        endpoint_variants,
        launch,
        tls,
    })
}

/// A `{{ mocks.NAME }}` value of `gateway.tls`, if the value is one: allowed where
/// gateprobe's own code calls the mocks and a backend serves TLS.
fn tls_mock_ref<'v>(
    cx: &Ctx<'_>,
    v: &'v Located<String>,
    field: &str,
    want: &str,
    (own_upstream, tls_mocks): (bool, bool),
) -> Result<Option<&'v str>, ScenarioError> {
    let Some(name) = super::template::mock_ref(&v.value) else {
        return Ok(None);
    };
    if name != want {
        return Err(cx
            .err(
                v.pos,
                field,
                format!("`{{{{ mocks.{name} }}}}` is not what `{field}` takes"),
            )
            .hint(format!("write `{{{{ mocks.{want} }}}}`")));
    }
    if !own_upstream {
        return Err(cx
            .err(v.pos, field, "`{{ mocks.* }}` is for the connections gateprobe opens to its TLS mocks")
            .hint("this gateway calls the mocks itself: give it the files through `launch.env` (e.g. `SSL_CERT_FILE: \"{{ mocks.ca }}\"`) or `gateprobe mock`'s exports"));
    }
    if !tls_mocks {
        return Err(cx
            .err(
                v.pos,
                field,
                "no backend serves TLS, so the run has no mock certificates",
            )
            .hint("give a backend `tls: {mode: ca}` (or `mtls`, `bad_cert`), or name a PEM file"));
    }
    Ok(Some(name))
}

/// Reads a PEM file named relative to the scenario.
fn pem_file(
    cx: &mut Ctx<'_>,
    v: &Located<String>,
    field: &str,
    what: &str,
) -> Result<(std::path::PathBuf, Vec<u8>), ScenarioError> {
    let name = cx.string(v, field, None)?;
    let path = cx.path.parent().unwrap_or(Path::new(".")).join(&name);
    // Bounded and a regular file only: `/dev/zero` or a named pipe here must not
    // exhaust memory or hang the run.
    match crate::files::read_bounded(&path, MAX_CA_BYTES, crate::files::Accept::Regular) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) => Err(cx
            .err(v.pos, field, format!("cannot read `{}`: {e}", path.display()))
            .hint(format!("name a PEM file of {what}, relative to the scenario"))),
    }
}

fn tls(
    cx: &mut Ctx<'_>,
    t: &super::raw::TlsSpec,
    own_upstream: bool,
    tls_mocks: bool,
) -> Result<super::Tls, ScenarioError> {
    let allowed = (own_upstream, tls_mocks);
    let verify = t.verify.as_ref().is_none_or(|v| v.value);
    let mut mock_ca = false;
    let ca_pem = match &t.ca {
        None => None,
        Some(ca) => {
            if !verify {
                return Err(cx
                    .err(ca.pos, "gateway.tls.ca", "`ca` has no effect with `verify: false`")
                    .hint("keep `ca` to verify against your CA, or drop it to accept any certificate"));
            }
            if tls_mock_ref(cx, ca, "gateway.tls.ca", "ca", allowed)?.is_some() {
                mock_ca = true;
                None
            } else {
                let (path, pem) = pem_file(cx, ca, "gateway.tls.ca", "CA certificates")?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certs) if !certs.is_empty() => Some(pem),
                    _ => {
                        return Err(cx
                            .err(
                                ca.pos,
                                "gateway.tls.ca",
                                format!("`{}` holds no PEM certificate", path.display()),
                            )
                            .hint("the file should contain `-----BEGIN CERTIFICATE-----` blocks"));
                    }
                }
            }
        }
    };
    let identity = match (&t.client_cert, &t.client_key) {
        (None, None) => None,
        (Some(v), None) | (None, Some(v)) => {
            let (has, needs) = if t.client_cert.is_some() {
                ("client_cert", "client_key")
            } else {
                ("client_key", "client_cert")
            };
            return Err(cx
                .err(
                    v.pos,
                    format!("gateway.tls.{needs}"),
                    format!("`{has}` needs `{needs}`"),
                )
                .hint("give the client certificate and its key together"));
        }
        (Some(cert), Some(key)) => {
            let c = tls_mock_ref(cx, cert, "gateway.tls.client_cert", "client_cert", allowed)?;
            let k = tls_mock_ref(cx, key, "gateway.tls.client_key", "client_key", allowed)?;
            match (c, k) {
                (Some(_), Some(_)) => Some(super::ClientIdentity::Mocks),
                (None, None) => {
                    let (_, cert_pem) = pem_file(cx, cert, "gateway.tls.client_cert", "a client certificate")?;
                    let (_, key_pem) = pem_file(cx, key, "gateway.tls.client_key", "a PKCS#8 private key")?;
                    if let Err(e) = reqwest::Identity::from_pkcs8_pem(&cert_pem, &key_pem) {
                        return Err(cx
                            .err(key.pos, "gateway.tls.client_key", format!("not a usable client certificate and key: {}", crate::text::error_chain(&e)))
                            .hint("give a PEM certificate and its PKCS#8 key (`-----BEGIN PRIVATE KEY-----`); convert others with `openssl pkcs8 -topk8 -nocrypt`"));
                    }
                    Some(super::ClientIdentity::Pem {
                        cert: cert_pem,
                        key: key_pem,
                    })
                }
                _ => {
                    return Err(cx
                        .err(
                            key.pos,
                            "gateway.tls.client_key",
                            "the certificate and the key come from different places",
                        )
                        .hint("use `{{ mocks.client_cert }}` with `{{ mocks.client_key }}`, or two files"));
                }
            }
        }
    };
    Ok(super::Tls {
        ca_pem,
        verify,
        mock_ca,
        identity,
    })
}

/// The largest CA file read (a bundle of every public root is about 200 KiB).
const MAX_CA_BYTES: usize = 4 * 1024 * 1024;

const DEFAULT_LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);

fn launch(
    cx: &mut Ctx<'_>,
    l: &super::raw::LaunchSpec,
    at: Pos,
    url: Option<&Located<String>>,
    (has_token, tls_mocks): (bool, bool),
) -> Result<LaunchConfig, ScenarioError> {
    // `{{ mocks.* }}` names files that exist only when a backend serves TLS.
    let needs_mocks = |cx: &Ctx<'_>, t: &Template, v: &Located<String>, field: &str| {
        if t.names_mock_files() && !tls_mocks {
            return Err(cx
                .err(
                    v.pos,
                    field,
                    "no backend serves TLS, so the run has no mock certificates",
                )
                .hint("give a backend `tls: {mode: ca}` (or `mtls`, `bad_cert`)"));
        }
        Ok(())
    };
    if l.command.is_empty() {
        return Err(cx
            .err(at, "gateway.launch.command", "`gateway.launch.command` is empty")
            .hint(
                "write the program and its arguments, e.g. `command: [litellm, --config, \"{{ launch.config }}\"]`",
            ));
    }
    // Holes are gateprobe's own addresses and paths, never credentials: what a URL
    // carries (DATABASE_URL=postgres://u:PASSWORD@..., --api-base ...?key=...) is.
    let url_secrets = |cx: &mut Ctx<'_>, t: &Template, field: &str| {
        cx.url_secrets(
            field,
            &t.render_launch(|_| Some(String::new()), |_| Some(String::new())),
        );
    };
    // Credentials on the command line: the value after a flag named as one
    // (`--master-key VALUE`), after its `=` (`--api-key=VALUE`), or of an assignment
    // (`DB_PASS=VALUE`, as `env` takes them).
    let mut command = Vec::new();
    let mut value_is_secret = false;
    for (i, c) in l.command.iter().enumerate() {
        let field = format!("gateway.launch.command[{i}]");
        let t = cx.launch_template(c, &field, value_is_secret)?;
        needs_mocks(cx, &t, c, &field)?;
        url_secrets(cx, &t, &field);
        value_is_secret = false;
        if let Some(arg) = t.as_literal() {
            match arg.split_once('=') {
                Some((name, value)) if is_secret_name(name) => cx.secret(&field, value),
                None => value_is_secret = arg.starts_with('-') && is_secret_name(&arg),
                Some(_) => {}
            }
        }
        command.push(t);
    }
    let mut env = Vec::new();
    for (k, v) in &l.env.0 {
        let secret = is_secret_name(&k.value);
        let field = format!("gateway.launch.env.{}", k.value);
        let t = cx.launch_template(v, &field, secret)?;
        needs_mocks(cx, &t, v, &field)?;
        url_secrets(cx, &t, &field);
        env.push((k.value.clone(), t));
    }
    let config = match &l.config {
        None => None,
        Some(c) => {
            cx.one_of(c, "gateway.launch.config", "config kind", &["litellm"])?;
            if !has_token {
                return Err(cx
                    .err(c.pos, "gateway.launch.config", "a LiteLLM config needs a master key")
                    .hint("set `gateway.auth.token`: it becomes the proxy's master key and gateprobe's client key"));
            }
            Some(LaunchConfigKind::Litellm)
        }
    };
    let url = match url {
        Some(u) => cx.launch_template(u, "gateway.url", false)?,
        None => interpolate_in("http://127.0.0.1:{{ launch.port }}", &|_| None, false, true)
            .map(|r| r.template)
            .unwrap_or_else(|_| Template::literal("")),
    };
    let ready = match &l.ready {
        Some(r) => cx.launch_template(r, "gateway.launch.ready", false)?,
        None => url.clone(),
    };
    let timeout = match &l.timeout {
        None => DEFAULT_LAUNCH_TIMEOUT,
        Some(t) => cx.timeout(t, "gateway.launch.timeout")?,
    };
    Ok(LaunchConfig {
        command,
        env,
        config,
        keep_defaults: l.keep_defaults,
        url,
        ready,
        timeout,
    })
}

/// Whether a client header carries a credential: `Authorization`, `Proxy-Authorization`,
/// `Cookie`, `X-Api-Key`, `Private-Token`, ... (the one rule for credential names).
fn secret_header(name: &str) -> bool {
    is_secret_name(name)
}
