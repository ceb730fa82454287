//! A mutex that cannot poison: a panic while it is held does not turn every later lock into a panic.
//!
//! sidekey's locked sections are short assignments (a status field, a list of
//! route uses); a panic in one leaves nothing half-written that a later
//! reader could trip on, so the request path and the admin API go on.

use std::sync::PoisonError;

pub use std::sync::MutexGuard;

#[derive(Debug, Default)]
#[allow(clippy::disallowed_types)] // the one place std's mutex is wrapped
pub struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    #[allow(clippy::disallowed_types)]
    pub const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Locks, whether or not an earlier holder panicked.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_locked_does_not_poison() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("while holding the lock");
        })
        .join();
        *m.lock() += 1;
        assert_eq!(*m.lock(), 2);
    }
}
