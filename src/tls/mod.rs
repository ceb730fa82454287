//! The local certificate authority of HTTPS interception: generated once into `state_dir` (or given by the operator), name-constrained to the routed hosts, minting short-lived leaves on demand.

pub mod ca;
pub mod leaf;
mod store;

pub use ca::{Authority, CaError, CaSource};
