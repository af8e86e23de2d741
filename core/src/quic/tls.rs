//! The core's TLS identity for the edge↔core QUIC endpoint and the rustls/quinn server
//! configuration built from it.
//!
//! Called by `main.rs` at start (load or create the identity, print its fingerprint) and by
//! [`super::QuicServer::bind`]. The certificate is self-signed: edges do not check a chain,
//! they pin the SHA-256 of the certificate's DER ([`fingerprint`]), so it must stay stable
//! across restarts — a generated one is kept in the `settings` tree (written durably), or the
//! operator gives PEM files. Must never log the private key, and uses the `ring` provider
//! explicitly (no process-wide default installed from here, so nothing races on it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tgcdn_shared::wire::ALPN;

use crate::store::{Store, StoreError};

/// Settings key of the generated identity.
const IDENTITY_SETTING: &str = "tls/identity";

/// Subject name of a generated certificate. Edges pin the fingerprint and may use any
/// server name; this one is what they send by convention.
pub const SERVER_NAME: &str = "tgcdn-core";

/// Why the TLS identity or configuration could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM file {path}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot generate a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("cannot keep the generated certificate")]
    Store(#[from] StoreError),
    #[error("rustls refused the certificate or key")]
    Rustls(#[from] rustls::Error),
    #[error("the TLS configuration has no QUIC-capable cipher suite")]
    NoQuicSuite(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first; a generated identity has only the leaf.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The pinned fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map(|leaf| fingerprint(leaf))
            .unwrap_or_default()
    }
}

/// What is persisted for a generated identity.
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    cert_der: Vec<u8>,
    /// PKCS#8.
    key_der: Vec<u8>,
}

/// SHA-256 of a DER certificate as 64 lowercase hex digits, no separators: the form edges
/// put in their config (`TGCDN_CORE_CERT_SHA256`).
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The identity from PEM files when both are given, else the one kept in `store` (created
/// and kept durably on first start).
pub async fn load_or_generate(
    store: &Store,
    pem: Option<(&Path, &Path)>,
) -> Result<Identity, TlsError> {
    if let Some((cert, key)) = pem {
        return load_pem(cert, key);
    }
    if let Some(stored) = store.setting::<StoredIdentity>(IDENTITY_SETTING)? {
        return Ok(from_stored(stored));
    }
    let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])?;
    let stored = StoredIdentity {
        cert_der: generated.cert.der().to_vec(),
        key_der: generated.key_pair.serialize_der(),
    };
    store.put_setting_durable(IDENTITY_SETTING, &stored).await?;
    tracing::info!("generated a new TLS certificate for the QUIC endpoint");
    Ok(from_stored(stored))
}

fn from_stored(stored: StoredIdentity) -> Identity {
    Identity {
        chain: vec![CertificateDer::from(stored.cert_der)],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(stored.key_der)),
    }
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_pem(cert_path: &Path, key_path: &Path) -> Result<Identity, TlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(pem_error(cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(cert_path))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(pem_error(key_path))?;
    Ok(Identity { chain, key })
}

/// rustls server config: TLS 1.3 only (QUIC requires it), the `ring` provider, our ALPN.
pub fn server_crypto(identity: Identity) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // Edges reconnect rarely and 0-RTT data could be replayed; keep the handshake plain.
    config.max_early_data_size = 0;
    Ok(config)
}

/// The quinn server config over [`server_crypto`] with `transport`.
pub fn quic_server_config(
    identity: Identity,
    transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, TlsError> {
    let crypto = QuicServerConfig::try_from(server_crypto(identity)?)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generated_identity_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::open(dir.path()).unwrap();
            load_or_generate(&store, None).await.unwrap().fingerprint()
        };
        let store = Store::open(dir.path()).unwrap();
        let second = load_or_generate(&store, None).await.unwrap();
        assert_eq!(second.fingerprint(), first);
        assert_eq!(first.len(), 64);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        server_crypto(second).unwrap();
    }

    #[tokio::test]
    async fn pem_files_win_over_the_stored_identity() {
        let dir = tempfile::tempdir().unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["core.example".into()]).unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, generated.cert.pem()).unwrap();
        std::fs::write(&key_path, generated.key_pair.serialize_pem()).unwrap();
        let store = Store::temporary().unwrap();
        let identity = load_or_generate(&store, Some((&cert_path, &key_path)))
            .await
            .unwrap();
        assert_eq!(identity.fingerprint(), fingerprint(generated.cert.der()));
        assert_eq!(
            store
                .setting::<StoredIdentity>(IDENTITY_SETTING)
                .unwrap()
                .map(|_| ()),
            None
        );
        server_crypto(identity).unwrap();
    }

    #[test]
    fn unreadable_or_empty_pem_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            load_pem(&empty, &empty),
            Err(TlsError::NoCertificate { .. })
        ));
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            load_pem(&missing, &missing),
            Err(TlsError::Pem { .. })
        ));
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
