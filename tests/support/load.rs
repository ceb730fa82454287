//! Steady load for rotation tests: clients on kept-alive connections GET one URL back to back until stopped; any answer but 200 is a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

/// Running clients; [`Load::stop`] ends them.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    /// Starts `n` clients, each with a pooled client of its own, GETting `url`.
    pub fn start(url: &str, n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..n)
            .map(|_| {
                let (url, stop) = (url.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let client = super::client();
                    let (mut ok, mut failed) = (0u64, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let (status, body) = super::get_with(&client, &url).await;
                        match status.as_u16() {
                            200 => ok += 1,
                            s => failed.push(format!("{s} {}", String::from_utf8_lossy(&body))),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients and waits for them; asserts that no request failed
    /// and returns how many were answered 200.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for c in self.clients {
            let (ok, failed) = c.await.unwrap();
            assert!(failed.is_empty(), "failed requests: {failed:?}");
            total += ok;
        }
        total
    }
}
