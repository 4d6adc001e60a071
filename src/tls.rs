//! The HTTPS certificate: a rustls server configuration built from PEM files, from ACME
//! (`rustls-acme`, TLS-ALPN-01 on the HTTPS port itself) or from a self-signed certificate
//! for localhost that `rcgen` makes once and keeps in a directory.
//!
//! Every configuration here uses the `ring` provider explicitly, so it never depends on which
//! process-wide default happens to be installed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls_acme::AcmeConfig;
use rustls_acme::caches::DirCache;

use crate::config::{Config, TlsMode};

/// ALPN protocols the HTTPS listener speaks, most preferred first.
pub const ALPN_HTTP: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// The ALPN protocol of ACME TLS-ALPN-01 validation connections.
pub const ALPN_ACME: &[u8] = b"acme-tls/1";

/// The names a self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("certificate {cert} and key {key} cannot be used together: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS is off (server.plain_http = true): there is no certificate to load")]
    Disabled,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, TlsError>
{
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?)
}

fn with_http_alpn(mut config: rustls::ServerConfig) -> rustls::ServerConfig {
    config.alpn_protocols = ALPN_HTTP.iter().map(|p| p.to_vec()).collect();
    config
}

/// The server configuration `config.tls` asks for. In ACME mode this spawns, on the current
/// tokio runtime, the task that obtains and renews the certificate and logs its progress.
pub async fn server_config(config: &Config) -> Result<rustls::ServerConfig, TlsError> {
    if !config.tls_enabled() {
        return Err(TlsError::Disabled);
    }
    match config.tls.mode {
        TlsMode::Files => from_pem_files(&config.tls.cert_file, &config.tls.key_file),
        TlsMode::SelfSigned => self_signed(&config.self_signed_dir()),
        TlsMode::Acme => acme(config),
    }
}

fn pem_error(
    what: &'static str,
    path: &Path,
) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError {
    let path = path.to_path_buf();
    move |e| TlsError::Pem {
        what,
        path: path.clone(),
        message: match e {
            rustls::pki_types::pem::Error::NoItemsFound => format!("no PEM {what} found"),
            other => other.to_string(),
        },
    }
}

/// A configuration serving the certificate chain and private key in two PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error("certificates", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("certificates", cert))?;
    if chain.is_empty() {
        return Err(pem_error("certificates", cert)(
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(pem_error("a private key", key))?;
    let config = builder()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|source| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(with_http_alpn(config))
}

/// Paths of the self-signed certificate and key in `dir`.
pub fn self_signed_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Makes a self-signed certificate for [`SELF_SIGNED_NAMES`] in `dir` unless both files are
/// already there, so browsers that accepted it once keep accepting it. Returns the paths.
pub fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = self_signed_paths(dir);
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes()).map_err(|source| {
        TlsError::Write {
            path: key.clone(),
            source,
        }
    })?;
    std::fs::write(&cert, generated.cert.pem()).map_err(|source| TlsError::Write {
        path: cert.clone(),
        source,
    })?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for localhost");
    Ok((cert, key))
}

/// A configuration serving the self-signed certificate kept in `dir` (made on first use).
pub fn self_signed(dir: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let (cert, key) = ensure_self_signed(dir)?;
    from_pem_files(&cert, &key)
}

fn acme(config: &Config) -> Result<rustls::ServerConfig, TlsError> {
    let tls = &config.tls;
    let contacts = tls.acme_contacts.iter().map(|c| {
        if c.starts_with("mailto:") {
            c.clone()
        } else {
            format!("mailto:{c}")
        }
    });
    let cache_dir = config.acme_cache_dir();
    let mut state = AcmeConfig::new(&tls.acme_domains)
        .contact(contacts)
        .directory(&tls.acme_directory_url)
        .cache(DirCache::new(cache_dir.clone()))
        .state();
    let mut server = builder()?
        .with_no_client_auth()
        .with_cert_resolver(state.resolver());
    server.alpn_protocols = ALPN_HTTP
        .iter()
        .chain([&ALPN_ACME])
        .map(|p| p.to_vec())
        .collect();

    tracing::info!(
        domains = ?tls.acme_domains,
        directory = %tls.acme_directory_url,
        cache = %cache_dir.display(),
        "obtaining certificates by ACME (TLS-ALPN-01)"
    );
    // The state is a stream that never ends: polling it loads the cache, orders, and renews.
    tokio::spawn(async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(ok) => tracing::info!(event = ?ok, "acme"),
                Err(err) => tracing::error!(error = %err, "acme"),
            }
        }
    });
    Ok(server)
}

/// Writes a file only its owner can read (0600 on Unix), replacing any previous content.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // `mode` only applies to new files; an existing one may have been wider.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("omnihub-tls-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn self_signed_certificate_is_made_once_and_reused() {
        let dir = tempdir("self");
        let config = self_signed(&dir).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let (cert, key) = self_signed_paths(&dir);
        let first = std::fs::read(&cert).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        self_signed(&dir).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "certificate was remade"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pem_files_load_and_errors_name_the_file() {
        let dir = tempdir("files");
        let (cert, key) = ensure_self_signed(&dir).unwrap();
        from_pem_files(&cert, &key).unwrap();

        let missing = dir.join("missing.pem");
        let err = from_pem_files(&missing, &key).unwrap_err().to_string();
        assert!(
            err.contains("missing.pem") && err.contains("certificates"),
            "{err}"
        );

        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let err = from_pem_files(&garbage, &key).unwrap_err().to_string();
        assert!(
            err.contains("garbage.pem") && err.contains("no PEM certificates found"),
            "{err}"
        );
        let err = from_pem_files(&cert, &garbage).unwrap_err().to_string();
        assert!(
            err.contains("garbage.pem") && err.contains("private key"),
            "{err}"
        );
        // Certificate where the key should be.
        let err = from_pem_files(&cert, &cert).unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("private key"),
            "{err}"
        );

        // A key that belongs to another certificate.
        let other = tempdir("other");
        let (_, other_key) = ensure_self_signed(&other).unwrap();
        let err = from_pem_files(&cert, &other_key).unwrap_err().to_string();
        assert!(err.contains("cannot be used together"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other).unwrap();
    }

    #[tokio::test]
    async fn plain_http_has_no_tls_configuration() {
        let mut config = Config::default();
        config.server.plain_http = true;
        assert!(matches!(
            server_config(&config).await,
            Err(TlsError::Disabled)
        ));
    }

    #[tokio::test]
    async fn acme_configuration_offers_the_challenge_protocol() {
        let dir = tempdir("acme");
        let mut config = Config::default();
        config.tls.mode = TlsMode::Acme;
        config.tls.acme_domains = vec!["omnihub.example.com".into()];
        // Unroutable, so the spawned task only logs errors and never reaches the internet.
        config.tls.acme_directory_url = "https://127.0.0.1:9/directory".into();
        config.tls.acme_cache_dir = dir.clone();
        let server = server_config(&config).await.unwrap();
        assert_eq!(
            server.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"acme-tls/1".to_vec()]
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
