//! Pooled HTTPS clients that present a TLS client certificate: one pool per certificate, so a pooled connection never carries another certificate than the request's, and a retired certificate's pool is dropped soon after its last request.
//!
//! The request says which certificate to present (a [`PresentCert`] in its
//! extensions, put there by the `client_cert` injection form). Each
//! certificate gets its own pool and its own rustls configuration, whose
//! client-certificate resolver always answers with that certificate and
//! whose session cache is its own (a resumed session would skip client
//! authentication, so sessions never cross certificates).
//!
//! After a rotation, requests carry the new certificate, so they take new
//! connections at once. The route tells its pools which certificate is now
//! published ([`CertPools::rotated_to`]), and the pools of every other
//! certificate are dropped then: their idle connections close at once, and
//! connections still busy close when their request ends. A request that
//! loaded the old value just before the rotation, or a revocation probe,
//! makes an old certificate's pool again; that one is dropped once unused for
//! [`RETIRE_AFTER`]. Nothing in flight fails.

use super::body::ProxyBody;
use super::client::UpstreamClient;
use super::reach::Reach;
use crate::sync::Mutex;
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a pool whose certificate is no longer in use is kept.
pub const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// The certificate a request must be sent with (a request extension).
#[derive(Clone)]
pub struct PresentCert {
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate.
    pub id: [u8; 32],
}

/// One route's pools, one per certificate in use.
pub struct CertPools {
    reach: Reach,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pools: Vec<Pool>,
    sweeping: bool,
    /// The certificate published now, once the route has said
    /// ([`CertPools::rotated_to`]); its pool is never retired.
    current: Option<[u8; 32]>,
}

impl State {
    /// Whether a pool may be retired: one of a certificate no longer published,
    /// or, before the route has said which is, more than one pool.
    fn has_retirable(&self) -> bool {
        match self.current {
            Some(c) => self.pools.iter().any(|p| p.id != c),
            None => self.pools.len() > 1,
        }
    }
}

struct Pool {
    id: [u8; 32],
    client: UpstreamClient,
    last_used: Instant,
}

impl CertPools {
    /// Pools whose connections go where `reach` says, trusting what it trusts.
    pub fn new(reach: Reach) -> Arc<CertPools> {
        Arc::new(CertPools {
            reach,
            state: Mutex::new(State::default()),
        })
    }

    /// The pool that presents `cert`, made on first use.
    pub fn client(self: &Arc<Self>, cert: &PresentCert) -> UpstreamClient {
        let now = Instant::now();
        let mut state = self.state.lock();
        if let Some(p) = state.pools.iter_mut().find(|p| p.id == cert.id) {
            p.last_used = now;
            return p.client.clone();
        }
        let client = self.reach.pool(Some(cert));
        state.pools.push(Pool {
            id: cert.id,
            client: client.clone(),
            last_used: now,
        });
        if state.has_retirable() && !state.sweeping {
            state.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
        client
    }

    /// The credential now holds the certificate `key`: the pools of every
    /// other certificate are dropped now, so their idle connections close
    /// (a connection busy with a request closes when the request ends).
    pub fn rotated_to(&self, key: &CertifiedKey) {
        let Some(leaf) = key.cert.first() else {
            return;
        };
        let id: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
        let retired: Vec<Pool> = {
            let mut state = self.state.lock();
            state.current = Some(id);
            let (keep, retired) = std::mem::take(&mut state.pools)
                .into_iter()
                .partition(|p| p.id == id);
            state.pools = keep;
            retired
        };
        drop(retired); // idle connections close here, outside the lock
    }

    /// Calls [`CertPools::rotated_to`] with `current()` now and each time
    /// `published` changes, for as long as these pools and the sender exist.
    pub fn follow(
        self: &Arc<Self>,
        mut published: watch::Receiver<u64>,
        current: impl Fn() -> Option<Arc<CertifiedKey>> + Send + 'static,
    ) {
        if let Some(key) = current() {
            self.rotated_to(&key);
        }
        let pools = Arc::downgrade(self);
        tokio::spawn(async move {
            while published.changed().await.is_ok() {
                let Some(pools) = pools.upgrade() else {
                    return;
                };
                if let Some(key) = current() {
                    pools.rotated_to(&key);
                }
            }
        });
    }

    /// How many certificates have a pool now (for tests and metrics).
    pub fn pools(&self) -> usize {
        self.state.lock().pools.len()
    }
}

/// Drops pools unused for [`RETIRE_AFTER`], keeping the published
/// certificate's (or, until the route has said which it is, the most recently used one).
async fn sweep(pools: Weak<CertPools>) {
    loop {
        tokio::time::sleep(RETIRE_AFTER).await;
        let Some(pools) = pools.upgrade() else {
            return;
        };
        let (retired, more) = {
            let mut state = pools.state.lock();
            let newest = state.pools.iter().map(|p| p.last_used).max();
            let current = state.current;
            let kept = |p: &Pool| match current {
                Some(c) => p.id == c,
                None => Some(p.last_used) == newest,
            };
            let (keep, retired): (Vec<Pool>, Vec<Pool>) = std::mem::take(&mut state.pools)
                .into_iter()
                .partition(|p| kept(p) || p.last_used.elapsed() < RETIRE_AFTER);
            state.pools = keep;
            state.sweeping = state.has_retirable();
            (retired, state.sweeping)
        };
        drop(retired); // idle connections close here, outside the lock
        if !more {
            return;
        }
    }
}

/// Sends with the pool for the request's certificate.
pub async fn send(
    pools: &Arc<CertPools>,
    req: http::Request<ProxyBody>,
) -> Result<http::Response<hyper::body::Incoming>, Option<hyper_util::client::legacy::Error>> {
    let Some(cert) = req.extensions().get::<PresentCert>().cloned() else {
        return Err(None);
    };
    pools.client(&cert).request(req).await.map_err(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> PresentCert {
        let mut p = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap();
        p.not_after = rcgen::date_time_ymd(2031, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = p.self_signed(&key).unwrap();
        let id = super::super::cert::load(&c.pem(), &key.serialize_pem()).unwrap();
        PresentCert {
            key: id.key,
            id: id.id,
        }
    }

    fn pools() -> Arc<CertPools> {
        CertPools::new(Reach::new(None, Duration::from_secs(1), None).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_certificate_pool_is_dropped_within_twice_retire_after() {
        let (old, new) = (cert(), cert());
        let p = pools();
        p.client(&old);
        p.client(&old);
        assert_eq!(p.pools(), 1, "one pool per certificate");
        tokio::time::sleep(Duration::from_millis(500)).await;
        p.client(&new); // the rotation: the old pool is not used again
        assert_eq!(p.pools(), 2);
        // Keep using the new one, as traffic would.
        for _ in 0..8 {
            tokio::time::sleep(RETIRE_AFTER / 4).await;
            p.client(&new);
        }
        assert_eq!(p.pools(), 1, "the old pool is gone within 2 × RETIRE_AFTER");
        // The pool left is the new certificate's: using it makes no new pool.
        p.client(&new);
        assert_eq!(p.pools(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_route_keeps_its_one_pool() {
        let (a, b) = (cert(), cert());
        let p = pools();
        p.client(&a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        p.client(&b);
        tokio::time::sleep(RETIRE_AFTER * 5).await;
        assert_eq!(p.pools(), 1, "the most recently used pool stays");
        p.client(&b);
        assert_eq!(p.pools(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_drops_the_other_pools_and_a_probes_pool_goes_later() {
        let (old, new) = (cert(), cert());
        let p = pools();
        p.client(&old);
        p.rotated_to(&new.key);
        assert_eq!(p.pools(), 0, "the old pool is dropped at the rotation");
        p.client(&new);
        // A probe (or a request that loaded the old value) uses the old one
        // again; the route then stays quiet.
        p.client(&old);
        assert_eq!(p.pools(), 2);
        tokio::time::sleep(RETIRE_AFTER * 2 + Duration::from_millis(10)).await;
        assert_eq!(p.pools(), 1, "the old pool is gone within 2 × RETIRE_AFTER");
        p.client(&new);
        assert_eq!(p.pools(), 1, "the one left is the published certificate's");
    }
}
