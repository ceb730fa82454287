//! The rotation engine on a paused tokio clock: refresh times, backoff, stale then expired, single flight, max_age.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use sidekey::credential::env::EnvSpec;
use sidekey::credential::{
    BoxFuture, Credential, CredentialConfig, Issued, Lease, Material, Source, SourceError,
    SourceSpec, State, Unusable, engine,
};
use sidekey::secret::Secret;
use sidekey::sync::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use support::logs;
use tokio::time::Instant;

/// The engine's collaborator: hands out numbered tokens with a set lifetime,
/// fails while told to, and records when each fetch started.
struct TestSource {
    lifetime: Option<Duration>,
    /// How long before "now" each value was issued (for max_age).
    issued_ago: Duration,
    failing: AtomicBool,
    /// Fail with a permanent error (the origin refuses what it is sent).
    refusing: AtomicBool,
    /// The lease of the previous value each fetch was handed (`None`: no previous value).
    previous_leases: Mutex<Vec<Option<Option<u64>>>>,
    fetch_takes: Duration,
    /// Hand out the same token again instead of a new one.
    same_value: AtomicBool,
    count: AtomicU64,
    starts: Mutex<Vec<Instant>>,
}

impl TestSource {
    fn new(lifetime: Option<Duration>) -> Arc<Self> {
        Arc::new(TestSource {
            lifetime,
            issued_ago: Duration::ZERO,
            failing: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            previous_leases: Mutex::new(Vec::new()),
            fetch_takes: Duration::ZERO,
            same_value: AtomicBool::new(false),
            count: AtomicU64::new(0),
            starts: Mutex::new(Vec::new()),
        })
    }
    fn fetches(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
    fn gaps(&self) -> Vec<Duration> {
        let s = self.starts.lock();
        s.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Source for TestSource {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            self.starts.lock().push(Instant::now());
            self.previous_leases
                .lock()
                .push(previous.map(|p| p.lease.as_ref().and_then(|l| l.get::<u64>().copied())));
            let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
            if !self.fetch_takes.is_zero() {
                tokio::time::sleep(self.fetch_takes).await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(SourceError::new(format!("test source down (fetch {n})")));
            }
            if self.refusing.load(Ordering::SeqCst) {
                return Err(SourceError::permanent(format!(
                    "test source refuses (fetch {n})"
                )));
            }
            let n = if self.same_value.load(Ordering::SeqCst) {
                0
            } else {
                n
            };
            let now = SystemTime::now();
            Ok(Issued {
                material: Material::Token(Secret::new(format!("clock-token-{n}")).unwrap()),
                issued_at: now - self.issued_ago,
                expires_at: self.lifetime.map(|l| now + l),
                lease: Some(Lease::new(n)),
            })
        })
    }
}

fn credential(name: &str, max_age: Option<Duration>, enforce: bool) -> Arc<Credential> {
    logs::init();
    Credential::new(CredentialConfig {
        name: name.into(),
        source: SourceSpec::new(EnvSpec {
            var: "UNUSED".into(),
        }),
        max_age,
        enforce_max_age: enforce,
        min_refresh_interval: sidekey::credential::rejection::DEFAULT_MIN_REFRESH_INTERVAL,
    })
}

async fn first_value(cred: &Credential) {
    let mut rx = cred.subscribe();
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|g| *g > 0))
        .await
        .expect("a first value")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn refreshes_between_two_thirds_and_ninety_percent_of_the_lifetime() {
    let life = Duration::from_secs(300);
    let src = TestSource::new(Some(life));
    let cred = credential("clock-schedule", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    tokio::time::sleep(Duration::from_secs(300 * 20)).await;
    let gaps = src.gaps();
    assert!(gaps.len() >= 20, "{} refreshes in 20 lifetimes", gaps.len());
    for g in &gaps {
        assert!(
            *g >= Duration::from_secs(200) && *g <= Duration::from_secs(270),
            "refresh after {g:?} of a 300 s lifetime"
        );
    }
    let distinct: std::collections::HashSet<_> = gaps.iter().map(|g| g.as_millis()).collect();
    assert!(distinct.len() > 1, "no jitter: {gaps:?}");
    assert_eq!(cred.state(), State::Fresh);
    assert_eq!(cred.status().rotations, src.fetches() - 1);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_with_jitter_up_to_five_minutes_and_logs_the_delay_it_uses() {
    let src = TestSource::new(None);
    src.failing.store(true, Ordering::SeqCst);
    let cred = credential("clock-backoff", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    // 1+2+4+...+256 s is about 511 s; then four capped retries.
    tokio::time::sleep(Duration::from_secs(511 * 12 / 10 + 4 * 300 + 1)).await;
    let gaps = src.gaps();
    assert!(gaps.len() >= 12, "{gaps:?}");
    for (i, g) in gaps.iter().enumerate() {
        let base = Duration::from_secs(1 << i.min(20)).min(Duration::from_secs(300));
        let low = base.mul_f64(0.8).max(Duration::from_secs(1));
        let high = base.mul_f64(1.2).min(Duration::from_secs(300));
        assert!(
            *g >= low && *g <= high + Duration::from_millis(1),
            "retry {i}: {g:?} not in {low:?}..{high:?}"
        );
    }
    assert!(gaps[10..].iter().all(|g| *g >= Duration::from_secs(240)));
    // The delay the audit event announces is the delay that was used.
    let announced: Vec<u64> = logs::lines_with("credential=\"clock-backoff\"")
        .iter()
        .filter(|l| l.contains("refresh_failed"))
        .filter_map(|l| {
            l.split("retry_in_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    for (g, ms) in gaps.iter().zip(&announced) {
        assert!(
            (g.as_millis() as i128 - *ms as i128).abs() <= 2,
            "used {g:?}, announced {ms} ms"
        );
    }
    assert!(announced.len() >= gaps.len());
    assert_eq!(cred.state(), State::Failed);
    assert_eq!(cred.current().err(), Some(Unusable::Unavailable));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn stale_while_valid_then_expired_then_fresh_again() {
    let src = TestSource::new(Some(Duration::from_secs(30)));
    let cred = credential("clock-stale", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    assert_eq!(cred.state(), State::Fresh);
    src.failing.store(true, Ordering::SeqCst);
    // The first refresh is due at 20..27 s; it fails.
    tokio::time::sleep(Duration::from_secs(28)).await;
    assert!(src.fetches() >= 2);
    assert_eq!(cred.state(), State::Stale);
    let snap = cred.current().expect("the last good value still serves");
    assert_eq!(snap.generation, 1);
    assert!(
        cred.status()
            .last_error
            .unwrap()
            .contains("test source down")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cred.current().err(), Some(Unusable::Expired));
    assert_eq!(cred.state(), State::Expired);
    assert!(!logs::lines_with("event=\"expired\" credential=\"clock-stale\"").is_empty());
    src.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(cred.current().expect("a new value").generation, 2);
    assert_eq!(cred.state(), State::Fresh);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_triggers_cost_one_fetch() {
    let src = Arc::new(TestSource {
        fetch_takes: Duration::from_secs(1),
        ..Arc::into_inner(TestSource::new(Some(Duration::from_secs(3600)))).unwrap()
    });
    let cred = credential("clock-single", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    assert_eq!(src.fetches(), 1);
    let generation = cred.current().unwrap().generation;
    let mut joins = Vec::new();
    for i in 0..100 {
        let cred = cred.clone();
        joins.push(tokio::spawn(async move {
            if i % 2 == 0 {
                cred.refresh_now().await.map(|()| false)
            } else {
                Ok(cred.report_rejection(generation))
            }
        }));
    }
    let mut asked = 0;
    for j in joins {
        if j.await.unwrap().expect("refresh succeeds") {
            asked += 1;
        }
    }
    assert_eq!(asked, 1, "one rejection report asks for the refresh");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(src.fetches(), 2, "exactly one fetch for 100 triggers");
    assert_eq!(cred.current().unwrap().generation, generation + 1);
    // A late report about the replaced value asks for nothing.
    assert!(!cred.report_rejection(generation));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(src.fetches(), 2);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn max_age_is_announced_once_per_value_and_enforced_when_asked() {
    for enforce in [false, true] {
        let name = format!("clock-overdue-{enforce}");
        let src = Arc::new(TestSource {
            issued_ago: Duration::from_secs(50),
            ..Arc::into_inner(TestSource::new(None)).unwrap()
        });
        src.same_value.store(true, Ordering::SeqCst);
        let cred = credential(&name, Some(Duration::from_secs(60)), enforce);
        let task = engine::spawn(cred.clone(), src.clone());
        first_value(&cred).await;
        assert_eq!(cred.state(), State::Fresh);
        assert!(cred.current().is_ok());
        tokio::time::sleep(Duration::from_secs(11)).await;
        let events = |n: &str| {
            logs::lines_with(&format!("credential=\"{n}\""))
                .into_iter()
                .filter(|l| l.contains("event=\"rotation_overdue\""))
                .count()
        };
        assert_eq!(events(&name), 1);
        if enforce {
            assert_eq!(cred.current().err(), Some(Unusable::Expired));
            assert_eq!(cred.state(), State::Expired);
        } else {
            assert!(cred.current().is_ok());
            assert_eq!(cred.state(), State::RotationOverdue);
        }
        // The same value fetched again is not announced again.
        cred.refresh_now().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(events(&name), 1);
        // A new value issued now is within policy.
        src.same_value.store(false, Ordering::SeqCst);
        cred.refresh_now().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(cred.current().is_ok());
        assert_eq!(cred.state(), State::Fresh, "enforce={enforce}");
        task.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_value_with_a_new_lifetime_is_not_a_rotation() {
    let src = TestSource::new(Some(Duration::from_secs(60)));
    src.same_value.store(true, Ordering::SeqCst);
    let cred = credential("clock-same", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    let mut generations = cred.subscribe();
    generations.borrow_and_update();
    // Several refreshes, each returning the same token with a later expiry.
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert!(src.fetches() >= 4, "{}", src.fetches());
    assert!(
        !generations.has_changed().unwrap(),
        "nobody is told of a new value"
    );
    assert!(cred.previous().is_none(), "no previous value to probe");
    assert_eq!(cred.status().rotations, 0);
    assert_eq!(cred.current().unwrap().generation, 1);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn each_fetch_is_handed_the_previous_issue_with_its_lease() {
    let src = TestSource::new(Some(Duration::from_secs(30)));
    let cred = credential("clock-previous", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    tokio::time::sleep(Duration::from_secs(30 * 3)).await;
    let seen = src.previous_leases.lock().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    // The first fetch has nothing before it; each later one gets the lease
    // the source put on the value it issued just before.
    assert_eq!(seen[0], None);
    for (i, lease) in seen.iter().enumerate().skip(1) {
        assert_eq!(*lease, Some(Some(i as u64)), "fetch {}: {seen:?}", i + 1);
    }
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_retried_at_the_slowest_pace() {
    let src = TestSource::new(None);
    src.refusing.store(true, Ordering::SeqCst);
    let cred = credential("clock-permanent", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    tokio::time::sleep(Duration::from_secs(3 * 300 + 1)).await;
    let gaps = src.gaps();
    assert!(!gaps.is_empty(), "no retry at all");
    // A transient failure would be retried after about 1 s, 2 s, 4 s ...
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(240)),
        "{gaps:?}"
    );
    assert_eq!(cred.state(), State::Failed);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn rejections_refresh_once_per_interval_and_back_off_while_fresh_values_are_rejected() {
    let src = TestSource::new(None);
    let cred = credential("clock-rejected", None, false);
    let task = engine::spawn(cred.clone(), src.clone());
    first_value(&cred).await;
    // An upstream that rejects every value: each request, every 100 ms,
    // reports the rejection of the value it carried (the current one).
    let started = Instant::now();
    let reject_for = |secs: u64| {
        let cred = cred.clone();
        async move {
            let until = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < until {
                cred.report_rejection(cred.current().unwrap().generation);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    reject_for(76).await;
    let starts: Vec<Duration> = src.starts.lock()[1..]
        .iter()
        .map(|t| *t - started)
        .collect();
    // The 5 s interval, then 10, 20, 40 s while each fresh value is rejected too.
    let want = [0, 5, 15, 35, 75].map(Duration::from_secs);
    assert_eq!(starts, want, "refreshes at {starts:?}");
    assert!(cred.upstream_rejects_fresh_values());
    assert_eq!(cred.status().rotations, 5);

    // A request accepted with the current value: the flag clears and the
    // backoff starts over from the interval.
    cred.record_use();
    assert!(!cred.upstream_rejects_fresh_values());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = src.fetches();
    reject_for(1).await;
    assert_eq!(
        src.fetches(),
        before,
        "still within 5 s of the last refresh"
    );
    reject_for(2).await;
    assert_eq!(src.fetches(), before + 1, "5 s after the last refresh");
    let last = *src.starts.lock().last().unwrap() - started;
    assert_eq!(last, Duration::from_secs(80));
    task.abort();
}
