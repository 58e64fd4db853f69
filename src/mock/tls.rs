//! TLS for mock backends (`tls:` of a backend): a CA gateprobe makes for each run, the
//! certificate each TLS mock serves (for 127.0.0.1 and `localhost` from that CA, or a
//! defective one a client must refuse), the client certificate an mTLS mock requires,
//! and the PEM files a gateway is pointed at (`{{ mocks.ca }}`, `SSL_CERT_FILE`).
//!
//! Certificates are made with rcgen (ECDSA P-256) and served with rustls on ring:
//! unlike native-tls, rustls can require a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::scenario::{CertDefect, ClientIdentity, MockTls, Tls};

/// The variable `gateprobe mock` exports the CA certificate's path in.
pub const CA_VAR: &str = "GATEPROBE_MOCK_CA";
/// The variable `gateprobe mock` exports the client certificate's path in.
pub const CLIENT_CERT_VAR: &str = "GATEPROBE_MOCK_CLIENT_CERT";
/// The variable `gateprobe mock` exports the client key's path in.
pub const CLIENT_KEY_VAR: &str = "GATEPROBE_MOCK_CLIENT_KEY";

/// The host name a `wrong_host` certificate is issued for.
pub const WRONG_HOST: &str = "wrong-host.gateprobe.invalid";

/// The PEM files of a run's mock PKI.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    /// The CA certificate (`{{ mocks.ca }}`).
    pub ca: PathBuf,
    /// The client certificate an mTLS mock accepts (`{{ mocks.client_cert }}`).
    pub client_cert: PathBuf,
    /// Its PKCS#8 key (`{{ mocks.client_key }}`).
    pub client_key: PathBuf,
}

impl PkiFiles {
    /// The path a `{{ mocks.NAME }}` reference names.
    pub fn by_name(&self, name: &str) -> Option<&Path> {
        match name {
            "ca" => Some(&self.ca),
            "client_cert" => Some(&self.client_cert),
            "client_key" => Some(&self.client_key),
            _ => None,
        }
    }
}

/// Why the mock PKI could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation failed.
    #[error("cannot make the mock certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The TLS server configuration was refused.
    #[error("cannot set up TLS for a mock: {0}")]
    Server(#[from] rustls::Error),
    /// The files could not be written.
    #[error("cannot write the mock certificates to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<PkiError> for std::io::Error {
    fn from(e: PkiError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

/// A run's mock CA, its client certificate, and the files they are written to. The
/// directory is removed on drop when gateprobe chose it.
pub struct MockPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    /// Where the PEM files are.
    pub files: PkiFiles,
    owned_dir: bool,
}

impl std::fmt::Debug for MockPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPki")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Drop for MockPki {
    fn drop(&mut self) {
        if self.owned_dir {
            let _ = std::fs::remove_dir_all(&self.files.dir);
        }
    }
}

/// Valid certificates are valid from 2020 to 2100; expired ones for January 2020.
fn validity(p: &mut CertificateParams, expired: bool) {
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = if expired {
        date_time_ymd(2020, 1, 31)
    } else {
        date_time_ymd(2100, 1, 1)
    };
}

fn leaf(
    names: &[&str],
    cn: &str,
    eku: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, expired);
    Ok(p)
}

/// The names a mock's valid certificate is issued for.
const LOOPBACK: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

impl MockPki {
    /// Makes a CA and a client certificate and writes the PEM files into `dir`, or into
    /// a new temporary directory (removed on drop) without one.
    pub fn create(dir: Option<&Path>) -> Result<MockPki, PkiError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("gateprobe mock CA {}", std::process::id()));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca_params, false);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let client_key = KeyPair::generate()?;
        let client = leaf(&[], "gateprobe mock client", ExtendedKeyUsagePurpose::ClientAuth, false)?
            .signed_by(&client_key, &ca)?;
        let (dir, owned_dir) = match dir {
            Some(d) => (d.to_owned(), false),
            None => (temp_dir(), true),
        };
        let files = PkiFiles {
            ca: dir.join("mock-ca.pem"),
            client_cert: dir.join("mock-client.pem"),
            client_key: dir.join("mock-client-key.pem"),
            dir,
        };
        let pki = MockPki {
            ca_pem: ca.pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca,
            files,
            owned_dir,
        };
        pki.write()?;
        Ok(pki)
    }

    fn write(&self) -> Result<(), PkiError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| PkiError::Write { path, source }
        };
        std::fs::create_dir_all(&self.files.dir).map_err(err(&self.files.dir))?;
        for (path, text, secret) in [
            (&self.files.ca, &self.ca_pem, false),
            (&self.files.client_cert, &self.client_cert_pem, false),
            (&self.files.client_key, &self.client_key_pem, true),
        ] {
            write_file(path, text.as_bytes(), secret).map_err(err(path))?;
        }
        Ok(())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What `gateprobe mock` prints for the PKI: a comment and the `export` lines that
    /// point a gateway (and `gateprobe gateway`) at its files. `SSL_CERT_FILE` and
    /// `REQUESTS_CA_BUNDLE` replace a process's trust store with the mock CA: set them
    /// for a gateway that talks to the mocks only.
    pub fn env_lines(&self, quote: impl Fn(&str) -> String) -> Vec<String> {
        let path = |p: &Path| quote(&p.display().to_string());
        let f = &self.files;
        vec![
            format!(
                "# tls: the mocks' certificates come from a CA made for this run ({}; removed when the mocks stop)",
                f.dir.display()
            ),
            format!("export {CA_VAR}={}", path(&f.ca)),
            format!("export SSL_CERT_FILE={}", path(&f.ca)),
            format!("export REQUESTS_CA_BUNDLE={}", path(&f.ca)),
            format!("export {CLIENT_CERT_VAR}={}", path(&f.client_cert)),
            format!("export {CLIENT_KEY_VAR}={}", path(&f.client_key)),
        ]
    }

    /// `tls` with its `{{ mocks.* }}` references filled in: the mock CA among the
    /// trusted roots, the mock client certificate as the identity.
    pub fn resolve(&self, tls: &Tls) -> Tls {
        let mut t = tls.clone();
        if t.mock_ca {
            let mut pem = t.ca_pem.take().unwrap_or_default();
            if !pem.is_empty() && !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(self.ca_pem.as_bytes());
            t.ca_pem = Some(pem);
            t.mock_ca = false;
        }
        if matches!(t.identity, Some(ClientIdentity::Mocks)) {
            t.identity = Some(ClientIdentity::Pem {
                cert: self.client_cert_pem.clone().into_bytes(),
                key: self.client_key_pem.clone().into_bytes(),
            });
        }
        t
    }

    /// The TLS server configuration of a mock served as `mode` says.
    pub fn server_config(&self, mode: MockTls) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let key = KeyPair::generate()?;
        let cert = match mode {
            MockTls::Ca | MockTls::Mtls => {
                leaf(&LOOPBACK, "gateprobe mock", ExtendedKeyUsagePurpose::ServerAuth, false)?
                    .signed_by(&key, &self.ca)?
            }
            MockTls::BadCert(CertDefect::WrongHost) => {
                leaf(&[WRONG_HOST], WRONG_HOST, ExtendedKeyUsagePurpose::ServerAuth, false)?
                    .signed_by(&key, &self.ca)?
            }
            MockTls::BadCert(CertDefect::Expired) => leaf(
                &LOOPBACK,
                "gateprobe mock (expired)",
                ExtendedKeyUsagePurpose::ServerAuth,
                true,
            )?
            .signed_by(&key, &self.ca)?,
            MockTls::BadCert(CertDefect::SelfSigned) => leaf(
                &LOOPBACK,
                "gateprobe mock (self-signed)",
                ExtendedKeyUsagePurpose::ServerAuth,
                false,
            )?
            .self_signed(&key)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
        let builder = if mode == MockTls::Mtls {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.der().clone())?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| PkiError::Server(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = builder.with_single_cert(chain, key)?;
        // The mocks speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A directory of its own under the system's temporary directory.
fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "gateprobe-mock-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes a file; a key is readable by its owner only.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    o.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_and_references_resolve() {
        let dir = tempfile_dir();
        let pki = MockPki::create(Some(&dir)).expect("pki");
        let ca = std::fs::read_to_string(&pki.files.ca).expect("ca");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(&pki.files.client_key).expect("key");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&pki.files.client_key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        let t = Tls {
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----".to_vec()),
            mock_ca: true,
            identity: Some(ClientIdentity::Mocks),
            ..Tls::default()
        };
        let r = pki.resolve(&t);
        let roots = String::from_utf8(r.ca_pem.expect("roots")).expect("utf8");
        assert!(roots.starts_with("-----BEGIN CERTIFICATE-----\nX\n") && roots.ends_with(&ca));
        assert!(matches!(r.identity, Some(ClientIdentity::Pem { .. })));
        for mode in [
            MockTls::Ca,
            MockTls::Mtls,
            MockTls::BadCert(CertDefect::WrongHost),
            MockTls::BadCert(CertDefect::SelfSigned),
            MockTls::BadCert(CertDefect::Expired),
        ] {
            pki.server_config(mode).expect("server config");
        }
        drop(pki);
        assert!(dir.exists(), "a directory given is kept");
        let _ = std::fs::remove_dir_all(&dir);
        let own = MockPki::create(None).expect("pki");
        let d = own.files.dir.clone();
        assert!(d.exists());
        drop(own);
        assert!(!d.exists(), "a directory of its own is removed");
    }

    fn tempfile_dir() -> PathBuf {
        let d = temp_dir();
        std::fs::create_dir_all(&d).expect("dir");
        d
    }
}
