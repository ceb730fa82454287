//! HTTP client connections and the body type, shared by the proxy and by the sources that call out (OAuth 2.0, AWS).

pub mod body;
pub mod client;
pub mod direct;
