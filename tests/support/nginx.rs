//! A real nginx (Debian package, installed by scripts/install-test-peers) serving HTTPS on a loopback port, requiring client certificates from a test CA, optionally with a CRL; its access log names each request's client certificate serial.

use super::logs;
use super::tls::TestCa;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A running nginx. Its files live in `dir`: `ca.pem` (the CA clients must
/// chain to), `server.pem`/`server-key.pem`, `crl.pem` when given, `access.log`.
pub struct Nginx {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

/// One access-log line: when (Unix seconds), the client certificate's serial
/// (hex, as nginx prints it), the status, the path, nginx's connection
/// number (`$connection`, the `*N` of its error log), nginx's verification verdict.
#[derive(Debug, Clone)]
pub struct Access {
    pub at: f64,
    pub serial: String,
    pub status: u16,
    pub verify: String,
    pub path: String,
    pub connection: u64,
}

/// A loopback port free right now (nginx binds it itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx's files in `dir`: the CA clients must chain to (`ca.pem`), and
/// its server certificate and key from the same CA.
pub fn server_files(ca: &TestCa, dir: &Path) {
    server_files_for(ca, dir, &["localhost", "127.0.0.1"]);
}

/// [`server_files`] with a server certificate for `names`.
pub fn server_files_for(ca: &TestCa, dir: &Path, names: &[&str]) {
    ca.write(&dir.join("ca.pem"));
    let (cert, key) = ca.leaf_pem_for(names);
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server-key.pem"), key).unwrap();
}

/// A client certificate and key from `ca` with this serial, the key's lines
/// registered with the leak scanner.
pub fn client_pair(ca: &TestCa, serial: &[u8]) -> (String, String) {
    let pair = ca.client_pem(serial);
    for line in pair.1.lines().filter(|l| !l.starts_with("-----")) {
        logs::secret(line);
    }
    pair
}

impl Nginx {
    /// Starts nginx on `port` with the files already in `dir`; `crl` turns on `ssl_crl`.
    pub async fn start(dir: &Path, port: u16, crl: bool) -> Nginx {
        Self::start_with(dir, port, crl, "").await
    }

    /// [`Nginx::start`] with `extra` directives at the top of its one `location`.
    pub async fn start_with(dir: &Path, port: u16, crl: bool, extra: &str) -> Nginx {
        assert!(
            Path::new("/usr/sbin/nginx").exists(),
            "nginx is missing: run scripts/install-test-peers (it installs the Debian package)"
        );
        let d = dir.display();
        let crl_line = match crl {
            true => format!("ssl_crl {d}/crl.pem;"),
            false => String::new(),
        };
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format serials '$msec $ssl_client_serial $status $uri $connection $ssl_client_verify';
    access_log {d}/access.log serials;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server-key.pem;
        ssl_client_certificate {d}/ca.pem;
        ssl_verify_client on;
        {crl_line}
        keepalive_requests 1000000;
        keepalive_timeout 120s;
        location / {{
            default_type text/plain;
            {extra}
            return 200 "serial=$ssl_client_serial\n";
        }}
    }}
}}
"#
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nginx {
            port,
            dir: dir.to_owned(),
            child,
        }
    }

    /// Stops nginx and waits until it has exited (its port is free again).
    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }

    /// The access log so far.
    pub fn access(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Access {
                    at: f[0].parse().unwrap(),
                    serial: f[1].to_owned(),
                    status: f[2].parse().unwrap(),
                    path: f[3].to_owned(),
                    connection: f[4].parse().unwrap(),
                    verify: f[5..].join(" "),
                }
            })
            .collect()
    }

    /// Whether nginx's error log (level `info`) says the client closed
    /// connection `*N`.
    #[allow(dead_code)] // not every test binary uses every helper
    pub fn client_closed(&self, connection: u64) -> bool {
        let text = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let tag = format!("*{connection} client ");
        text.lines()
            .any(|l| l.contains(&tag) && l.contains(" closed "))
    }
}
