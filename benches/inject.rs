//! Criterion bench of the credential step: one wait-free snapshot load plus the pre-rendered header insert.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, header};
use sidekey::transport::body::{ProxyBody, empty};

fn request(headers: HeaderMap) -> http::Request<ProxyBody> {
    let mut req = http::Request::new(empty());
    *req.headers_mut() = headers;
    req
}

fn snapshot_and_inject(c: &mut Criterion) {
    let rt = common::runtime();
    let running = rt.block_on(async {
        let up = common::upstream().await;
        common::sidekey(up, "").await
    });
    let cred = running.app.credential("bench").expect("credential");
    let base = common::app_headers();

    let mut g = c.benchmark_group("credential");
    g.bench_function("snapshot_load", |b| b.iter(|| cred.current().is_ok()));
    g.bench_function("snapshot_load_and_header_insert", |b| {
        b.iter_batched_ref(
            || request(base.clone()),
            |req| {
                let snap = cred.current().expect("usable");
                snap.rendered[0].attach(req, None).expect("attached");
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("record_use", |b| b.iter(|| cred.record_use()));
    g.finish();

    let mut req = request(base.clone());
    cred.current().expect("usable").rendered[0]
        .attach(&mut req, None)
        .expect("attached");
    assert_eq!(req.headers()[header::AUTHORIZATION], common::EXPECTED);
    rt.block_on(running.app.shutdown());
}

criterion_group!(benches, snapshot_and_inject);
criterion_main!(benches);
