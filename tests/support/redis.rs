//! A throwaway redis-server on a free loopback port, with an admin password: a database whose users OpenBao's database engine creates with leases.

use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Redis {
    pub port: u16,
    pub admin_password: String,
    _child: Child,
}

impl Redis {
    pub async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin_password = super::logs::secret("redis-admin-pw-6a0c");
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--requirepass",
                &admin_password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is missing: run scripts/install-test-peers");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server not listening within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Redis {
            port,
            admin_password,
            _child: child,
        }
    }
}
