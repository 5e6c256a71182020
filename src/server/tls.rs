//! TLS for the listener: loads the certificate chain and private key once at
//! startup. A server asked to use TLS refuses to start when they cannot be
//! loaded; it never falls back to plain text.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls_pemfile::Item;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsConfig;

/// Protocol name clients negotiate for direct TLS (PostgreSQL 17+).
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// Why the TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    #[error("no private key found in {0}")]
    NoKey(String),
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

fn read_items(path: &Path) -> Result<Vec<Item>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    rustls_pemfile::read_all(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)
}

/// Builds the acceptor from PEM files.
///
/// # Errors
/// Fails when a file is missing or holds no certificate or key.
pub fn load_acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    // Installing the process-wide provider fails harmlessly when another
    // part of the process already did.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();

    let certs: Vec<CertificateDer<'static>> = read_items(&config.cert_path)?
        .into_iter()
        .filter_map(|item| match item {
            Item::X509Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(
            config.cert_path.display().to_string(),
        ));
    }
    let key: PrivateKeyDer<'static> = read_items(&config.key_path)?
        .into_iter()
        .find_map(|item| match item {
            Item::Pkcs8Key(key) => Some(key.into()),
            Item::Pkcs1Key(key) => Some(key.into()),
            Item::Sec1Key(key) => Some(key.into()),
            _ => None,
        })
        .ok_or_else(|| TlsError::NoKey(config.key_path.display().to_string()))?;

    let mut server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    server.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_an_error() {
        let config = TlsConfig {
            cert_path: "/nonexistent/cert.pem".into(),
            key_path: "/nonexistent/key.pem".into(),
        };
        assert!(matches!(load_acceptor(&config), Err(TlsError::Read { .. })));
    }
}
