//! The proxy: listeners, routes, scope policy, forwarding, and the mapping of failures to answers.

pub mod accept;
pub mod browser;
pub mod caller;
pub mod error;
pub mod forward;
pub mod headers;
pub mod idle_h2;
pub mod limits;
pub mod listener;
pub mod outbound;
pub mod peer;
pub mod preface;
pub mod probe;
pub mod request;
pub mod route;
pub mod router;
pub mod send;
pub mod standin;
pub mod stream_log;
pub mod table;
pub mod upgrade;

pub use error::ProxyError;
pub use route::Route;

/// Path normalisation lives below the config (scope rules use it); kept here under the name the request path uses.
pub use crate::path;
