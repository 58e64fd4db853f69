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
            Some(launch(cx, &l.value, l.pos, g.url.as_ref(), token.is_some())?)
        }
    };
    if g.endpoint_variants.is_some() {
        let pos = g.kind.as_ref().map(|k| k.pos).unwrap_or_default();
        openai_only(cx, "endpoint_variants", pos)?;
    }
    let endpoint_variants = g
        .endpoint_variants
        .unwrap_or_else(|| launch.as_ref().is_some_and(|l| l.config.is_some()));
    let tls = tls(cx, &g.tls)?;
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

fn tls(cx: &mut Ctx<'_>, t: &super::raw::TlsSpec) -> Result<super::Tls, ScenarioError> {
    let verify = t.verify.as_ref().is_none_or(|v| v.value);
    let ca_pem = match &t.ca {
        None => None,
        Some(ca) => {
            if !verify {
                return Err(cx
                    .err(ca.pos, "gateway.tls.ca", "`ca` has no effect with `verify: false`")
                    .hint("keep `ca` to verify against your CA, or drop it to accept any certificate"));
            }
            let name = cx.string(ca, "gateway.tls.ca", None)?;
            let path = cx.path.parent().unwrap_or(Path::new(".")).join(&name);
            // Bounded and a regular file only: `/dev/zero` or a named pipe here must
            // not exhaust memory or hang the run.
            let pem = crate::files::read_bounded(&path, MAX_CA_BYTES, crate::files::Accept::Regular).map_err(|e| {
                cx.err(
                    ca.pos,
                    "gateway.tls.ca",
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .hint("name a PEM file of CA certificates, relative to the scenario")
            })?;
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
    };
    Ok(super::Tls { ca_pem, verify })
}

/// The largest CA file read (a bundle of every public root is about 200 KiB).
const MAX_CA_BYTES: usize = 4 * 1024 * 1024;

const DEFAULT_LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);

fn launch(
    cx: &mut Ctx<'_>,
    l: &super::raw::LaunchSpec,
    at: Pos,
    url: Option<&Located<String>>,
    has_token: bool,
) -> Result<LaunchConfig, ScenarioError> {
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
