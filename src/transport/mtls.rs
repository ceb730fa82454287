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
//! connections at once; the old pool gets no new requests (except from
//! requests that loaded the old value just before the rotation). A pool not
//! used for [`RETIRE_AFTER`] is dropped when another pool is in use: its
//! idle connections close then, and connections still busy close when their
//! request ends. Nothing in flight fails.

use super::body::ProxyBody;
use super::client::UpstreamClient;
use super::reach::Reach;
use crate::sync::Mutex;
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Weak};
use std::time::Duration;
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
        if state.pools.len() > 1 && !state.sweeping {
            state.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
        client
    }

    /// How many certificates have a pool now (for tests and metrics).
    pub fn pools(&self) -> usize {
        self.state.lock().pools.len()
    }
}

/// Drops pools unused for [`RETIRE_AFTER`], keeping the most recently used one.
async fn sweep(pools: Weak<CertPools>) {
    loop {
        tokio::time::sleep(RETIRE_AFTER).await;
        let Some(pools) = pools.upgrade() else {
            return;
        };
        let (retired, more) = {
            let mut state = pools.state.lock();
            let newest = state.pools.iter().map(|p| p.last_used).max();
            let (keep, retired): (Vec<Pool>, Vec<Pool>) = std::mem::take(&mut state.pools)
                .into_iter()
                .partition(|p| Some(p.last_used) == newest || p.last_used.elapsed() < RETIRE_AFTER);
            state.pools = keep;
            state.sweeping = state.pools.len() > 1;
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
}
