//! The one send path: builds the upstream request, attaches a credential value and sends it. Proxying, the replay after a 401 and the revocation probe all go through here.

use super::error::ProxyError;
use super::request::{self, Endpoint};
use super::route::{Route, Target};
use super::{headers, standin};
use crate::credential::Snapshot;
use crate::inject::Rendered;
use crate::transport::body::ProxyBody;
use crate::transport::body::Streamed;
use crate::transport::client::SendFailure;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Response, Version};
use tokio::time::Instant;

/// A request checked and prepared for the upstream, without its credential.
/// Kept whole across a replay.
pub struct Outgoing {
    pub method: Method,
    /// Normalised path, as the scope check saw it.
    pub path: String,
    pub query: Option<String>,
    /// The app's own path and query, when normalising left the path as it
    /// was: the upstream URI then reuses it instead of parsing a new one.
    pub unchanged: Option<PathAndQuery>,
    pub headers: HeaderMap,
    /// The body's SHA-256 (hex), for a form that asked for it.
    pub body_sha256: Option<String>,
    /// The app's HTTP version: an HTTP/2 request to a plain-`http://`
    /// upstream goes on over h2c.
    pub version: Version,
    /// An HTTP/1.1 upgrade handshake (WebSocket): sent on a dedicated connection.
    pub upgrade: bool,
    /// The handshake came as an RFC 8441 extended CONNECT over HTTP/2: it
    /// goes upstream as one where the upstream allows it.
    pub extended: bool,
}

/// Sends `out` to the route's upstream with `rendered` (a rendering of
/// `snap`'s value) attached, and returns the answer with hop-by-hop headers
/// removed. `out.headers` stays as it was, for a replay.
pub async fn send(
    route: &Route,
    out: &mut Outgoing,
    snap: &Snapshot,
    rendered: &Rendered,
    body: ProxyBody,
) -> Result<Response<ProxyBody>, ProxyError> {
    // The request takes the app's own map and a copy stays for a replay:
    // hyper reuses a sent map for parsing the answer, and the app's has room
    // for the answer's headers where an exact copy would have to grow.
    let kept = out.headers.clone();
    let headers = std::mem::replace(&mut out.headers, kept);
    let target = request::Target {
        path: &out.path,
        query: out.query.as_deref(),
        unchanged: out.unchanged.as_ref(),
    };
    match &route.target {
        Target::StandIn => {
            let to = Endpoint {
                scheme: &Scheme::HTTP,
                authority: &Authority::from_static("stand-in"),
                base_path: "",
                origin_form: false,
            };
            let mut req = request::build(to, &out.method, target, headers, body)?;
            attach(rendered, &mut req, out)?;
            Ok(standin::answer(&req, snap, route))
        }
        Target::Remote {
            client,
            scheme,
            authority,
            base_path,
            ..
        } => {
            // An upgrade goes on a connection of the dialer's own, which
            // writes it in origin form; it is built and signed with the
            // upstream's real scheme and authority all the same.
            let to = Endpoint {
                scheme,
                authority,
                base_path,
                origin_form: client.origin_form(),
            };
            let mut req = request::build(to, &out.method, target, headers, body)?;
            attach(rendered, &mut req, out)?;
            if out.version == Version::HTTP_2 && client.origin_form() {
                *req.version_mut() = Version::HTTP_2;
            }
            let started = Instant::now();
            let timeout = route.config.timeout;
            let sent = async {
                match (&route.dialer, out.upgrade) {
                    // Boxed: an upgrade's dial is a large future (about
                    // 16 KB) that every request would otherwise carry and copy.
                    (Some(dialer), true) => Box::pin(dialer.send(req, out.extended))
                        .await
                        .map(|r| r.map(Streamed::new)),
                    _ => client.send(req).await,
                }
            };
            let result = tokio::time::timeout(timeout, sent).await;
            route.stats.observe_upstream(started.elapsed());
            let mut resp = result
                .map_err(|_| ProxyError::UpstreamTimeout(timeout))?
                .map_err(|e| match e {
                    SendFailure::RequestBody(m) => ProxyError::BadRequest(m),
                    SendFailure::Upstream(m) => ProxyError::UpstreamUnreachable(m),
                })?;
            headers::strip_hop_by_hop(resp.headers_mut());
            Ok(resp)
        }
    }
}

fn attach(
    rendered: &Rendered,
    req: &mut http::Request<ProxyBody>,
    out: &Outgoing,
) -> Result<(), ProxyError> {
    rendered
        .attach(req, out.body_sha256.as_deref())
        .map_err(|e| ProxyError::BadRequest(e.to_string()))
}
