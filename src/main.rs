//! The `sidekey` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use clap::Parser;
use http::Method;
use sidekey::cli::{self, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Run { config } | Command::Exec { config, .. } = &cli.command {
        sidekey::harden::harden(config);
    }
    let runtime = match sidekey::runtime::build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sidekey: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Check { config } => cli::check(&config),
        Command::Ca { config } => cli::ca(&config),
        Command::Run { config } => runtime.block_on(run(config)),
        Command::Inventory { admin, json } => runtime.block_on(inventory(admin, json)),
        Command::Refresh { name, admin } => runtime.block_on(action(admin, &name, "refresh")),
        Command::Revoke { name, admin } => runtime.block_on(action(admin, &name, "revoke")),
        // In the runtime's context (the Secret Service store talks D-Bus on
        // it) but not on one of its tasks: the store's calls block.
        Command::Secret { action } => {
            let _context = runtime.enter();
            cli::secret(action)
        }
        Command::Inject(args) => sidekey::kube::run(&args),
        Command::Exec {
            config,
            env_only,
            command,
        } => runtime.block_on(cli::exec(sidekey::app::exec::Options {
            config,
            env_only,
            command,
        })),
        Command::Iptables(args) => cli::iptables(&args),
    }
}

async fn run(path: std::path::PathBuf) -> ExitCode {
    let config = match sidekey::config::load(&path) {
        Ok(c) => c,
        Err(e) => return cli::config_failure(&e),
    };
    sidekey::logging::init(&config.log);
    let app = match sidekey::app::App::start(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("sidekey: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reason = match sidekey::app::wait_for_stop(&app, path).await {
        Ok(signal) => signal,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle stop signals");
            "none (signal handling failed)"
        }
    };
    tracing::info!(
        signal = reason,
        "stopping: no new connections, letting requests in flight finish"
    );
    app.shutdown().await;
    ExitCode::SUCCESS
}

async fn inventory(admin: cli::AdminArgs, json: bool) -> ExitCode {
    let token = match admin_token(&admin) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let path = "/v1/credentials";
    match sidekey::admin::client::call(&admin.admin, Method::GET, path, token.as_deref()).await {
        Ok((200, body)) => {
            if json {
                println!("{}", String::from_utf8_lossy(&body).trim_end());
                return ExitCode::SUCCESS;
            }
            match serde_json::from_slice::<Vec<sidekey::admin::Record>>(&body) {
                Ok(records) => {
                    print!("{}", cli::table(&records));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("unexpected answer from the admin API: {e}")),
            }
        }
        Ok((status, body)) => fail(format!(
            "admin API answered {status}: {}",
            String::from_utf8_lossy(&body)
        )),
        Err(e) => fail(e),
    }
}

/// The admin token of `--token-file`, if given.
fn admin_token(admin: &cli::AdminArgs) -> Result<Option<String>, String> {
    match &admin.token_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Ok(Some(t.trim().to_owned())),
            Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        },
        None => Ok(None),
    }
}

async fn action(admin: cli::AdminArgs, name: &str, what: &str) -> ExitCode {
    let token = match admin_token(&admin) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let path = format!("/v1/credentials/{name}/{what}");
    match sidekey::admin::client::call(&admin.admin, Method::POST, &path, token.as_deref()).await {
        Ok((200, body)) => {
            let state = serde_json::from_slice::<sidekey::admin::Record>(&body).ok();
            match state {
                Some(r) => println!(
                    "{name}: {what} done; state {}, fingerprint {}",
                    r.state,
                    r.fingerprint.as_deref().unwrap_or("-")
                ),
                None => println!("{name}: {what} done"),
            }
            ExitCode::SUCCESS
        }
        Ok((status, body)) => fail(format!(
            "{what} of {name} failed ({status}): {}",
            String::from_utf8_lossy(&body).trim()
        )),
        Err(e) => fail(e),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("sidekey: {message}");
    ExitCode::FAILURE
}
