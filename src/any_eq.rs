//! Equality between trait objects of one extension point (two sources' settings, two injection forms): equal when they are the same type with equal values.

use std::any::Any;

/// Implemented for every `PartialEq` type; lets `dyn Trait` values be compared.
pub trait AnyEq: Any {
    fn as_any(&self) -> &dyn Any;
    fn eq_any(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> AnyEq for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn eq_any(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// A shared trait object of one extension point (a source's settings, an
/// injection form): cloned cheaply, compared by value, printed by its own
/// `Debug`, used through `Deref`.
pub struct Dyn<T: ?Sized>(pub(crate) std::sync::Arc<T>);

impl<T: ?Sized + AnyEq> Dyn<T> {
    /// The value as its own type, when it is a `U`.
    pub fn downcast<U: Any>(&self) -> Option<&U> {
        self.0.as_any().downcast_ref()
    }
}

impl<T: ?Sized> Clone for Dyn<T> {
    fn clone(&self) -> Self {
        Dyn(self.0.clone())
    }
}

impl<T: ?Sized> std::ops::Deref for Dyn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + AnyEq> PartialEq for Dyn<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_any(other.0.as_any())
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Dyn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
