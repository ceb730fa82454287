//! A published credential value: complete, validated and pre-rendered before any request sees it.

use super::{Issued, Material};
use crate::inject::{InjectSpec, RenderError, Rendered};
use crate::secret::Fingerprint;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// One value of a credential as the request path sees it. Immutable; a
/// rotation publishes a new one.
pub struct Snapshot {
    pub material: Material,
    pub fingerprint: Fingerprint,
    /// Counts publications of new values, from 1.
    pub generation: u64,
    pub issued_at: SystemTime,
    pub expires_at: Option<SystemTime>,
    /// The source's handle on the value (see [`super::Lease`]).
    pub lease: Option<super::Lease>,
    /// When requests must stop using this value (expiry, or `max_age` when
    /// enforced), on tokio's clock.
    pub refuse_after: Option<Instant>,
    /// When the value becomes older than the rotation policy's `max_age`, on
    /// tokio's clock (refused then only if the policy is enforced).
    pub overdue_at: Option<Instant>,
    /// One entry per injection slot of the credential.
    pub rendered: Box<[Rendered]>,
    /// When this value was published, on tokio's clock.
    pub published: Instant,
}

impl Snapshot {
    /// Renders every injection form and works out the deadlines.
    pub fn build(
        issued: Issued,
        generation: u64,
        injectors: &[InjectSpec],
        max_age: Option<Duration>,
        enforce_max_age: bool,
    ) -> Result<Snapshot, RenderError> {
        let rendered = injectors
            .iter()
            .map(|i| i.render(&issued.material))
            .collect::<Result<Vec<_>, _>>()?;
        let now_wall = SystemTime::now();
        let now = Instant::now();
        let until = |t: SystemTime| now + t.duration_since(now_wall).unwrap_or(Duration::ZERO);
        let expiry = issued.expires_at.map(until);
        let overdue_at = max_age.map(|max| until(issued.issued_at + max));
        let overdue = overdue_at.filter(|_| enforce_max_age);
        let refuse_after = match (expiry, overdue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Snapshot {
            fingerprint: issued.material.fingerprint(),
            material: issued.material,
            generation,
            issued_at: issued.issued_at,
            expires_at: issued.expires_at,
            lease: issued.lease,
            refuse_after,
            overdue_at,
            rendered: rendered.into_boxed_slice(),
            published: now,
        })
    }

    /// The same value rendered for a new set of injectors (after a reload).
    pub fn rerender(&self, injectors: &[InjectSpec]) -> Result<Snapshot, RenderError> {
        let rendered = injectors
            .iter()
            .map(|i| i.render(&self.material))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            material: self.material.clone(),
            fingerprint: self.fingerprint,
            generation: self.generation,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            lease: self.lease.clone(),
            refuse_after: self.refuse_after,
            overdue_at: self.overdue_at,
            rendered: rendered.into_boxed_slice(),
            published: self.published,
        })
    }

    /// The value as the source issued it, for the source's next fetch.
    pub fn issued(&self) -> Issued {
        Issued {
            material: self.material.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            lease: self.lease.clone(),
        }
    }

    pub fn is_usable_at(&self, now: Instant) -> bool {
        self.refuse_after.is_none_or(|t| now < t)
    }

    /// Lifetime from publication to expiry, if the value expires.
    pub fn remaining_lifetime(&self) -> Option<Duration> {
        self.expires_at.map(|e| {
            e.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}
