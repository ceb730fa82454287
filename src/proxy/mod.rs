//! The proxy: listeners, routes, scope policy, forwarding, and the mapping of failures to answers.

pub mod body;
pub mod browser;
pub mod client;
pub mod direct;
pub mod error;
pub mod forward;
pub mod guard;
pub mod headers;
pub mod listener;
pub mod path;
pub mod probe;
pub mod request;
pub mod route;
pub mod scope;
pub mod standin;

pub use error::ProxyError;
pub use route::Route;
