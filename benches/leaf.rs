//! Criterion bench of interception's certificate step: a cached leaf against a fresh mint, alone
//! and with the TLS 1.3 handshake (in memory, full, no resumption) that presents it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use sidekey::tls::{Authority, CaSource};
use std::path::Path;
use std::sync::Arc;

const HOST: &str = "api.bench.test";

fn authority(dir: &Path) -> Authority {
    Authority::open(&CaSource::Generated(dir.to_path_buf()), &[HOST.to_owned()]).unwrap()
}

/// A client trusting `ca`, without session resumption: every handshake is a full one.
fn client(ca: &Authority) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::pem::PemObject::pem_slice_iter(ca.cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// Moves every pending TLS record from `from` to `to`.
fn transfer(from: &mut Connection, to: &mut Connection) {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
}

/// One full handshake between a client verifying the leaf and a server presenting it.
fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) {
    let name = ServerName::try_from(HOST).unwrap();
    let mut c = Connection::Client(ClientConnection::new(client, name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(server).unwrap());
    while c.is_handshaking() || s.is_handshaking() {
        transfer(&mut c, &mut s);
        transfer(&mut s, &mut c);
    }
}

fn leaves(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let client = client(&ca);
    ca.server_config(HOST).unwrap();
    let mut g = c.benchmark_group("leaf");
    g.bench_function("cached_lookup", |b| {
        b.iter(|| ca.server_config(HOST).unwrap())
    });
    // A CA opened anew (outside the timing) has no leaf yet: the call mints one.
    g.bench_function("fresh_mint", |b| {
        b.iter_batched(
            || authority(dir.path()),
            |fresh| fresh.server_config(HOST).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("handshake_cached_leaf", |b| {
        b.iter(|| handshake(ca.server_config(HOST).unwrap(), client.clone()))
    });
    g.bench_function("handshake_fresh_mint", |b| {
        b.iter_batched(
            || authority(dir.path()),
            |fresh| handshake(fresh.server_config(HOST).unwrap(), client.clone()),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, leaves);
criterion_main!(benches);
