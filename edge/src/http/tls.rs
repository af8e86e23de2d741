//! TLS termination for the HTTP listener: the certificate chain and private key named by
//! `TGCDN_TLS_CERT` / `TGCDN_TLS_KEY`, the rustls server configuration built from them
//! (ALPN `h2` then `http/1.1`), kept swappable so SIGHUP can pick up renewed files.
//!
//! Loaded once by `config` (so a missing, unreadable or mismatched file is a configuration
//! error at start), reloaded by `main` on SIGHUP, and used by [`super::serve_tls`], which
//! runs each handshake inside that connection's task. rustls with the `ring` provider only.
//! Never logs or formats key material; never blocks the accept loop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// ALPN protocols offered, most preferred first: browsers and players that speak HTTP/2
/// get it, everyone else falls back to HTTP/1.1.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the certificate chain and private key live (both PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// End-entity certificate first, then intermediates.
    pub cert: PathBuf,
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key.
    pub key: PathBuf,
}

/// Which file a [`TlsError`] is about: the configuration names the matching variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
}

impl TlsFile {
    /// The configuration key (`TGCDN_` + upper case in the environment).
    pub fn setting_key(self) -> &'static str {
        match self {
            TlsFile::Cert => "tls_cert",
            TlsFile::Key => "tls_key",
        }
    }
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        file: TlsFile,
        path: PathBuf,
        source: pem::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, RSA or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("{} cannot be used with the certificate in {}: {source}", key.display(), cert.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

impl TlsError {
    /// The file the operator has to fix.
    pub fn file(&self) -> TlsFile {
        match self {
            TlsError::Read { file, .. } => *file,
            TlsError::NoCertificate { .. } => TlsFile::Cert,
            // A key that does not parse or does not match the certificate: the key is the
            // usual culprit (the certificate was at least found and read).
            TlsError::NoKey { .. } | TlsError::Rejected { .. } => TlsFile::Key,
        }
    }
}

/// The listener's TLS identity: the files it came from and the configuration in use.
pub struct TlsIdentity {
    files: TlsFiles,
    /// Read once per handshake (an `Arc` clone), written only by [`TlsIdentity::reload`].
    current: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads and checks both files.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(TlsIdentity {
            files,
            current: RwLock::new(config),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; on success new handshakes use them, connections already open
    /// keep theirs. On failure the previous identity stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// An acceptor for one connection, with the identity current at this moment.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TlsAcceptor::from(config)
    }
}

/// Builds the rustls server configuration from the PEM files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let rejected = |source| TlsError::Rejected {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // with_single_cert parses the key and checks it against the certificate's public key,
    // so a mismatched pair fails here rather than at the first handshake.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        file: TlsFile::Cert,
        path: path.to_owned(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Read {
            file: TlsFile::Key,
            path: path.to_owned(),
            source,
        },
    })
}
