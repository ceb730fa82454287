//! sidekey: a credential-injecting sidecar proxy.
//!
//! The app sends plain HTTP to a loopback listener; sidekey checks the
//! request against the route's scope, attaches the route's credential
//! (fetched and rotated by [`credential`]) and forwards it upstream.
#![forbid(unsafe_code)]

pub mod admin;
pub mod any_eq;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credential;
pub mod duration;
pub mod error_body;
pub mod guard;
pub mod harden;
pub mod inject;
pub mod ipnet;
pub mod iptables;
pub mod kube;
pub mod logging;
pub mod material;
pub mod metrics;
pub mod parse;
pub mod path;
pub mod prompt;
pub mod proxy;
pub mod redact;
pub mod runtime;
pub mod scope;
pub mod scrubbed_env;
pub mod secret;
pub mod secret_ref;
pub mod shutdown;
pub mod sync;
pub mod throttle;
pub mod tls;
pub mod transport;
