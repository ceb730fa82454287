//! HTTP/1.1 connections to a plain-`http://` upstream: a short idle list per route, no shared pool machinery.
//!
//! A request takes the most recently used idle connection (or dials a new
//! one), and its answer's body gives the connection back when it ends. Each
//! runtime thread keeps its own list (as each nginx worker keeps its own
//! `keepalive` pool), so the request path takes no lock: no key hashing, no
//! per-checkout allocation, no background task either. hyper-util's pooled
//! client, used before, cost about 8.7k instructions per request on the
//! load benchmark; this path about 2k. HTTPS upstreams keep the pooled
//! client, where HTTP/2 multiplexing and TLS session reuse matter more.

use super::body::{ProxyBody, Streamed};
use super::client;
use http::uri::Authority;
use http::{Request, Response, Uri};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;
use thread_local::ThreadLocal;
use tokio::time::Instant;
use tower_service::Service;

/// Idle connections kept per upstream and thread (as nginx's `keepalive 64`).
const MAX_IDLE: usize = 64;
/// How long an idle connection is kept for reuse.
const IDLE_FOR: Duration = client::POOL_IDLE;

/// A route's plain-HTTP upstream: how to connect, and the idle lists.
pub struct Direct {
    connector: HttpConnector<super::resolve::Resolver>,
    /// `http://authority/`, what the connector resolves and dials.
    dial: Uri,
    /// Idle connections, one list per runtime thread, newest last.
    idle: ThreadLocal<RefCell<Vec<Idle>>>,
    /// HTTP/2 with prior knowledge, for the app's HTTP/2 requests (made on first use).
    pub h2c: super::h2c::H2c,
}

struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// A connection out on loan to one request; it returns to the idle list
/// when dropped (the answer's body holds it until the body ends).
pub struct Lease {
    upstream: Arc<Direct>,
    sender: Option<SendRequest<ProxyBody>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.upstream.give_back(sender);
        }
    }
}

/// Why a request did not get an answer.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed while the request was on it.
    Failed(hyper::Error),
}

impl Direct {
    /// Connections dialled as `reach` says.
    pub fn new(authority: &Authority, reach: &super::reach::Reach) -> Result<Direct, http::Error> {
        let connector = reach.tcp();
        let dial = Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        Ok(Direct {
            connector,
            dial,
            idle: ThreadLocal::new(),
            h2c: super::h2c::H2c::new(authority.clone(), reach.tcp()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection or a
    /// new one. A request that never left because a reused connection
    /// turned out to be closed is sent again on a new connection, once.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, SendError> {
        let (mut sender, mut fresh) = match self.take_idle() {
            Some(s) => (s, false),
            None => (self.connect().await?, true),
        };
        loop {
            if !fresh && sender.ready().await.is_err() {
                // Closed while idle (the upstream's keep-alive ran out).
                (sender, fresh) = (self.connect().await?, true);
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        upstream: self.clone(),
                        sender: Some(sender),
                    };
                    return Ok(resp.map(|body| Streamed::leased(body, lease)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => {
                        req = unsent;
                        (sender, fresh) = (self.connect().await?, true);
                    }
                    _ => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<ProxyBody>, SendError> {
        let io = self
            .connector
            .clone()
            .call(self.dial.clone())
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        let (sender, conn) = http1::handshake(io)
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn idle(&self) -> &RefCell<Vec<Idle>> {
        self.idle.get_or_default()
    }

    fn take_idle(&self) -> Option<SendRequest<ProxyBody>> {
        let mut stale = Vec::new(); // dropped after the borrow ends
        let mut idle = self.idle().borrow_mut();
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_FOR {
                return Some(entry.sender);
            }
            stale.push(entry);
        }
        None
    }

    /// Keeps a connection whose answer has ended. It may not have taken in
    /// the end of the answer yet: whoever takes it waits until it is ready.
    fn give_back(&self, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle().borrow_mut();
        // The oldest entry is at the bottom: drop it once it is stale.
        let stale = match idle.first() {
            Some(e) if e.sender.is_closed() || e.since.elapsed() >= IDLE_FOR => {
                Some(idle.remove(0))
            }
            _ => None,
        };
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
        drop(idle);
        drop(stale);
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(_) => f.write_str("connection failed"),
            SendError::Failed(_) => f.write_str("the connection failed mid-request"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(e) => Some(e.as_ref()),
            SendError::Failed(e) => Some(e),
        }
    }
}
