//! `sidekey exec`: runs a command with sidekey serving beside it in the same process, so the command reaches its APIs through sidekey and never holds a secret.
//!
//! The forward proxy and the admin API listen on free loopback ports; the
//! routes listen as configured. The command gets the proxy and CA-bundle
//! variables ([`child_env`]), its signals forwarded, and its exit status
//! becomes sidekey's; then sidekey stops, revoking what it issued for the run
//! where the source can.

mod bundle;
mod child_env;
mod signals;

use crate::app::{App, StartError};
use crate::config::{Config, ConfigErrors, ListenAddr};
use crate::material::MaterialKind;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use child_env::{AWS_PLACEHOLDER_KEY_ID, AWS_PLACEHOLDER_SECRET};

/// What `sidekey exec` was asked to do.
pub struct Options {
    pub config: PathBuf,
    /// Print the variables for a shell instead of running a command.
    pub env_only: bool,
    pub command: Vec<OsString>,
}

/// Why `sidekey exec` could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("invalid configuration")]
    Config(ConfigErrors),
    #[error("cannot start: {0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no command given: sidekey exec [-c FILE] -- CMD ARGS... (or --env-only)")]
    NoCommand,
}

/// Exit status when the command cannot be found, and when it cannot be run (as a shell's).
const NOT_FOUND: u8 = 127;
const NOT_EXECUTABLE: u8 = 126;

/// Runs the command (or, with `env_only`, serves until SIGTERM/SIGINT) and
/// returns the exit status to leave with.
pub async fn run(opts: Options) -> Result<u8, ExecError> {
    if opts.command.is_empty() && !opts.env_only {
        return Err(ExecError::NoCommand);
    }
    let mut config = crate::config::load(&opts.config).map_err(ExecError::Config)?;
    crate::logging::init(&config.log);
    on_free_ports(&mut config);
    let env_routes: Vec<(String, String)> = config
        .routes
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.env.clone()?)))
        .collect();
    let signs_aws = config
        .routes
        .iter()
        .any(|r| r.inject.material() == MaterialKind::AwsKeys);
    // Before anything runs: a signal from now on is forwarded, not fatal.
    let mut signals = signals::Signals::new()?;
    let app = App::start(config).await?;
    let dir = bundle::PrivateDir::create()?;
    let ca_bundle = match app.proxy_ca() {
        Some(ca) => Some(bundle::write(&dir, &ca.cert_pem)?),
        None => None,
    };
    let plan = child_env::Plan {
        proxy: app.proxy_addr().and_then(tcp),
        ca_bundle,
        routes: env_routes
            .into_iter()
            .filter_map(|(route, var)| Some((var, app.route_addr(&route).as_ref().and_then(tcp)?)))
            .collect(),
        signs_aws,
    };
    let set = plan.variables();
    let status = if opts.env_only {
        child_env::print_exports(&set)?;
        let signal = signals.wait_stop().await;
        tracing::info!(signal, "stopping");
        0
    } else {
        let remove = crate::harden::secret_var_names(&opts.config);
        let env = child_env::build(std::env::vars_os(), &remove, &set, signs_aws);
        run_child(&opts.command, env, &mut signals).await
    };
    app.shutdown_revoking().await;
    drop(dir);
    Ok(status)
}

/// The forward proxy and the admin API on free loopback ports: a laptop may
/// already run a sidekey on the configured ones.
fn on_free_ports(config: &mut Config) {
    let free = ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.admin.listen = free.clone();
    if let Some(p) = &mut config.proxy {
        p.listen = free;
    }
}

fn tcp(addr: &ListenAddr) -> Option<SocketAddr> {
    match addr {
        ListenAddr::Tcp(a) => Some(*a),
        ListenAddr::Unix(_) => None,
    }
}

/// Runs the command, forwarding signals, and gives its exit status (128 +
/// the signal's number when a signal ended it).
async fn run_child(
    command: &[OsString],
    env: Vec<(OsString, OsString)>,
    signals: &mut signals::Signals,
) -> u8 {
    let Some((program, args)) = command.split_first() else {
        return NOT_FOUND;
    };
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let shown = program.to_string_lossy();
            eprintln!("sidekey: cannot run {shown}: {e}");
            return match e.kind() {
                std::io::ErrorKind::NotFound => NOT_FOUND,
                _ => NOT_EXECUTABLE,
            };
        }
    };
    let pid = child.id();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.next() => {
                if let Some(pid) = pid {
                    signals::forward(pid, signal);
                }
            }
        }
    };
    match status {
        Ok(s) => exit_code(s),
        Err(e) => {
            eprintln!("sidekey: cannot wait for the command: {e}");
            1
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(255),
        (None, None) => 1,
    }
}
