//! Leaf certificates for intercepted hosts: minted on demand, cached per host, short-lived and renewed before they expire.

use super::ca::{Authority, CaError};
use crate::sync::Mutex;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// How long a leaf is valid.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A leaf is replaced once less than this is left of it.
pub const RENEW_BEFORE: Duration = Duration::from_secs(8 * 3600);

/// The cache of minted leaves, each with the TLS server config that presents it.
#[derive(Default)]
pub struct Leaves {
    by_host: Mutex<HashMap<String, Minted>>,
    /// Leaves minted so far (a cached one is not counted again).
    pub minted: AtomicU64,
}

#[derive(Clone)]
struct Minted {
    config: Arc<ServerConfig>,
    renew_at: SystemTime,
}

impl Authority {
    /// The TLS server config presenting a leaf for `host`, minted now if
    /// none is cached or the cached one is near its end. Only the hosts
    /// of host routes get one.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        if !self.lists(host) {
            return Err(CaError::Unlisted(host.to_owned()));
        }
        let now = SystemTime::now();
        if let Some(m) = self.leaves.by_host.lock().get(host) {
            if now < m.renew_at {
                return Ok(m.config.clone());
            }
        }
        let config = Arc::new(self.mint(host, now)?);
        self.leaves.minted.fetch_add(1, Ordering::Relaxed);
        crate::metrics::PROXY
            .leaves_minted
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host, "minted a leaf certificate");
        self.leaves.by_host.lock().insert(
            host.to_owned(),
            Minted {
                config: config.clone(),
                renew_at: now + LEAF_LIFETIME - RENEW_BEFORE,
            },
        );
        Ok(config)
    }

    fn mint(&self, host: &str, now: SystemTime) -> Result<ServerConfig, CaError> {
        let make = |e: String| CaError::Make(e);
        let mut params =
            CertificateParams::new(vec![host.to_owned()]).map_err(|e| make(e.to_string()))?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - Duration::from_secs(300)).into();
        params.not_after = (now + LEAF_LIFETIME).into();
        let key = KeyPair::generate().map_err(|e| make(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(|e| make(e.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| make(e.to_string()))?;
        let certified = CertifiedKey::new(vec![cert.der().clone(), self.cert_der.clone()], signer);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| make(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(One(Arc::new(certified))));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Presents the one leaf of its host whatever the client asked for: the
/// forward proxy refuses a mismatched SNI itself, with an answer.
#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for One {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::CaSource;

    #[test]
    fn one_mint_per_host_until_renewal_and_none_for_unlisted_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["a.example".to_owned(), "b.example".to_owned()];
        let ca = Authority::open(&CaSource::Generated(dir.path().join("state")), &hosts).unwrap();
        let first = ca.server_config("a.example").unwrap();
        let again = ca.server_config("a.example").unwrap();
        assert!(Arc::ptr_eq(&first, &again), "cached");
        assert_eq!(ca.leaves.minted.load(Ordering::Relaxed), 1);
        ca.server_config("b.example").unwrap();
        assert_eq!(ca.leaves.minted.load(Ordering::Relaxed), 2);
        assert!(matches!(
            ca.server_config("c.example"),
            Err(CaError::Unlisted(_))
        ));
        // Near its end a leaf is replaced by a new one.
        if let Some(m) = ca.leaves.by_host.lock().get_mut("a.example") {
            m.renew_at = SystemTime::now() - Duration::from_secs(1);
        }
        let renewed = ca.server_config("a.example").unwrap();
        assert!(!Arc::ptr_eq(&first, &renewed));
        assert_eq!(ca.leaves.minted.load(Ordering::Relaxed), 3);
        // The reopened CA is the same certificate.
        let reopened =
            Authority::open(&CaSource::Generated(dir.path().join("state")), &hosts).unwrap();
        assert_eq!(reopened.cert_pem, ca.cert_pem);
    }
}
