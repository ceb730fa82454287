//! A credential's recent history for the admin page: the last rotations, failures and revocations, in memory and bounded.

use crate::secret::Fingerprint;
use std::collections::VecDeque;
use std::time::SystemTime;

/// Entries kept per credential; older ones are dropped.
pub const KEPT: usize = 20;

/// One thing that happened to a credential. Never holds the value: a
/// fingerprint at most, and a failure's message (written to be shown).
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: SystemTime,
    /// `issued`, `rotated`, `refresh_failed`, `revoked` or `expired`, as the audit events.
    pub event: &'static str,
    pub fingerprint: Option<Fingerprint>,
    pub detail: Option<String>,
}

/// The last [`KEPT`] entries, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Timeline(VecDeque<Entry>);

impl Timeline {
    pub fn note(
        &mut self,
        event: &'static str,
        fingerprint: Option<Fingerprint>,
        detail: Option<&str>,
    ) {
        if self.0.len() == KEPT {
            self.0.pop_front();
        }
        self.0.push_back(Entry {
            at: SystemTime::now(),
            event,
            fingerprint,
            detail: detail.map(str::to_owned),
        });
    }

    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_entries() {
        let mut t = Timeline::default();
        for _ in 0..KEPT + 5 {
            t.note("rotated", None, None);
        }
        t.note("revoked", None, Some("why"));
        assert_eq!(t.entries().count(), KEPT);
        assert_eq!(t.entries().last().map(|e| e.event), Some("revoked"));
    }
}
