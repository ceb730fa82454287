//! sidekey: a credential-injecting sidecar proxy.
//!
//! The app sends plain HTTP to a loopback listener; sidekey checks the
//! request against the route's scope, attaches the route's credential
//! (fetched and rotated by [`credential`]) and forwards it upstream.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credential;
pub mod harden;
pub mod inject;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod runtime;
pub mod scrubbed_env;
pub mod secret;
