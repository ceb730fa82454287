//! Name resolution for upstream connections: the system resolver, or a fixed address (a route's `connect_to`).

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_service::Service;

/// Where an upstream connection goes. With a fixed address the upstream's
/// name still goes in SNI, the certificate check and `Host`; a fixed port
/// of 0 takes the upstream URL's port.
#[derive(Clone)]
pub enum Resolver {
    System(GaiResolver),
    Fixed(SocketAddr),
}

impl Resolver {
    pub fn new(connect_to: Option<SocketAddr>) -> Resolver {
        match connect_to {
            Some(a) => Resolver::Fixed(a),
            None => Resolver::System(GaiResolver::new()),
        }
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Resolver::System(g) => g.poll_ready(cx),
            Resolver::Fixed(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, name: Name) -> Self::Future {
        match self {
            Resolver::System(g) => {
                let f = g.call(name);
                Box::pin(async move { Ok(f.await?.collect::<Vec<_>>().into_iter()) })
            }
            Resolver::Fixed(a) => {
                let a = *a;
                Box::pin(async move { Ok(vec![a].into_iter()) })
            }
        }
    }
}
