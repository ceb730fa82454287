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
