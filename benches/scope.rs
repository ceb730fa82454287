//! Criterion bench of scope matching: path normalisation plus the allow-rule check, as the request path does it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use http::Method;
use sidekey::proxy::path;
use sidekey::scope::Scope;

fn rules(n: usize) -> Scope {
    let mut s = Scope::default();
    for i in 0..n {
        s.add_rule(
            &["GET".to_string(), "POST".to_string()],
            &[
                format!("/v{}/charges", i + 1),
                format!("/v{}/charges/**", i + 1),
            ],
        )
        .expect("rule");
    }
    s.add_rule(&["GET".into()], &["/v1/customers/*".into()])
        .expect("rule");
    s
}

fn check(scope: &Scope, method: &Method, raw: &str) -> bool {
    let norm = path::normalize(raw).expect("path");
    scope.allows(method, &norm.path)
}

fn scope_matching(c: &mut Criterion) {
    let small = rules(1);
    let large = rules(20);
    let open = Scope::default();
    let get = Method::GET;
    let mut g = c.benchmark_group("scope");
    g.bench_function("open_scope", |b| {
        b.iter(|| check(&open, &get, black_box("/v1/charges/ch_123")))
    });
    g.bench_function("3_patterns_allowed", |b| {
        b.iter(|| check(&small, &get, black_box("/v1/charges/ch_123/refunds")))
    });
    g.bench_function("3_patterns_refused", |b| {
        b.iter(|| check(&small, &get, black_box("/v1/payouts/po_1")))
    });
    g.bench_function("41_patterns_last_matches", |b| {
        b.iter(|| check(&large, &get, black_box("/v1/customers/cus_9")))
    });
    g.bench_function("normalise_dot_and_percent", |b| {
        b.iter(|| check(&small, &get, black_box("/v1/./charges/%63h_1/../ch_2")))
    });
    g.finish();
    assert!(check(&small, &get, "/v1/charges/ch_1"));
    assert!(!check(&small, &get, "/v2/charges"));
}

criterion_group!(benches, scope_matching);
criterion_main!(benches);
