//! Criterion bench of the full request path: a keep-alive client, sidekey in-process, a real loopback upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use http::StatusCode;

fn request_path(c: &mut Criterion) {
    let rt = common::runtime();
    let (upstream, running) = rt.block_on(async {
        let up = common::upstream().await;
        let sk = common::sidekey(up, "").await;
        (up, sk)
    });
    let mut direct = rt.block_on(common::connect(upstream));
    let mut proxied = rt.block_on(common::connect(running.addr));
    // The upstream refuses a request without the credential: the app sends
    // none through sidekey, the baseline sends it itself.
    let expected = Some(common::EXPECTED);
    assert_eq!(
        rt.block_on(common::get(&mut proxied, "/v1/charges", None)),
        StatusCode::OK,
        "sidekey must inject the credential the upstream expects"
    );
    assert_eq!(
        rt.block_on(common::get(&mut direct, "/v1/charges", expected)),
        StatusCode::OK
    );

    let mut g = c.benchmark_group("request_path");
    g.bench_function("through_sidekey", |b| {
        b.iter(|| rt.block_on(common::get(&mut proxied, "/v1/charges?limit=3", None)))
    });
    g.bench_function("upstream_direct", |b| {
        b.iter(|| rt.block_on(common::get(&mut direct, "/v1/charges?limit=3", expected)))
    });
    g.finish();
    drop(direct);
    drop(proxied);
    rt.block_on(running.app.shutdown());
}

criterion_group!(benches, request_path);
criterion_main!(benches);
