//! The command line: `run`, `check`, `ca`, `inventory`, `refresh`, `revoke`, `inject`, `iptables`, `secret`, `exec`.

use crate::admin::Record;
use crate::config::{self, Config, ConfigErrors};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// EX_CONFIG from sysexits.h: the configuration is invalid.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Parser, Debug)]
#[command(
    name = "sidekey",
    version,
    about = "A credential-injecting sidecar proxy: the app sends plain requests to localhost, sidekey attaches the credential."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the routes of a config file.
    Run {
        /// Config file (default: $SIDEKEY_CONFIG, then ./sidekey.toml).
        #[arg(short, long, env = "SIDEKEY_CONFIG", default_value = "sidekey.toml")]
        config: PathBuf,
    },
    /// Validate a config file and print its routes, credentials and scopes.
    Check {
        #[arg(short, long, env = "SIDEKEY_CONFIG", default_value = "sidekey.toml")]
        config: PathBuf,
    },
    /// Print the forward proxy's CA certificate (PEM) for apps to trust;
    /// generates the CA in state_dir on first use.
    Ca {
        #[arg(short, long, env = "SIDEKEY_CONFIG", default_value = "sidekey.toml")]
        config: PathBuf,
    },
    /// Show the credential inventory of a running sidekey.
    Inventory {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refresh a credential now.
    Refresh {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Drop a credential's value, revoke it at its source where possible, fetch anew.
    Revoke {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Add sidekey as a native sidecar to Kubernetes manifests (printed to stdout).
    Inject(crate::kube::InjectArgs),
    /// Print (or, with --apply, load) the iptables-restore rules that redirect a pod's egress to
    /// `[transparent] listen`, excluding sidekey's own UID.
    Iptables(IptablesArgs),
    /// Store or delete a value in the OS keyring, for `source = "keyring"`.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Run a command with sidekey serving beside it: proxy and CA variables
    /// set, no secret in its environment; exits with the command's status.
    Exec {
        #[arg(short, long, env = "SIDEKEY_CONFIG", default_value = "sidekey.toml")]
        config: PathBuf,
        /// Print `export` lines for a shell to eval, and serve until SIGTERM or SIGINT.
        #[arg(long)]
        env_only: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true)]
        command: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretAction {
    /// Store a value read from standard input (typed without echo on a terminal).
    Set {
        #[command(flatten)]
        entry: KeyringArgs,
    },
    /// Delete a stored value.
    Rm {
        #[command(flatten)]
        entry: KeyringArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct KeyringArgs {
    /// The entry's account: the `account` of the credential that reads it.
    pub account: String,
    /// The entry's service.
    #[arg(long, default_value = crate::credential::keyring::DEFAULT_SERVICE)]
    pub service: String,
    /// auto, kernel or secret-service (as the credential's `store`).
    #[arg(long, default_value = "auto")]
    pub store: String,
}

/// `sidekey secret set|rm`: writes or deletes a keyring entry. Nothing
/// about the value is printed.
pub fn secret(action: SecretAction) -> ExitCode {
    use crate::credential::keyring::Place;
    let (entry, set) = match action {
        SecretAction::Set { entry } => (entry, true),
        SecretAction::Rm { entry } => (entry, false),
    };
    let place = match Place::new(&entry.store, entry.service, entry.account) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sidekey: {e}");
            return ExitCode::from(2);
        }
    };
    let done = match set {
        true => crate::prompt::read_secret(&format!("value for {}: ", place.account))
            .and_then(|value| place.set(&value)),
        false => place.remove(),
    };
    match done {
        Ok(()) => {
            let what = if set { "stored" } else { "deleted" };
            eprintln!("sidekey: {what} {}", place.shown());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sidekey: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// Admin address: host:port or unix:/path.
    #[arg(long, env = "SIDEKEY_ADMIN", default_value = config::DEFAULT_ADMIN)]
    pub admin: String,
    /// File holding the admin token, for refresh and revoke, and for
    /// inventory from an admin listener off loopback.
    #[arg(long, env = "SIDEKEY_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// Prints config errors and gives the EX_CONFIG exit code.
pub fn config_failure(errors: &ConfigErrors) -> ExitCode {
    eprintln!("sidekey: invalid configuration:");
    for e in &errors.0 {
        eprintln!("  {e}");
    }
    ExitCode::from(EXIT_CONFIG)
}

/// `sidekey check`: the checked config, in words.
pub fn check(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let probe = config::probe_sources(&config, &text);
    print!("{}", describe(&config));
    for w in config::exposed_listeners(&config) {
        eprintln!("sidekey: warning: {w}");
    }
    if !probe.is_empty() {
        return config_failure(&ConfigErrors(probe));
    }
    println!("\n{}: OK", path.display());
    ExitCode::SUCCESS
}

/// `sidekey ca`: the CA certificate apps must trust, on stdout.
pub fn ca(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    if config.proxy.is_none() && config.transparent.is_none() {
        eprintln!(
            "sidekey: {} has no [proxy] table (nor [transparent]): there is no forward proxy and no CA",
            path.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    match crate::app::open_ca(&config, None) {
        Ok(Some(ca)) => {
            print!("{}", ca.cert_pem);
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "sidekey: no route has a `host`: nothing is intercepted, so there is no CA to trust"
            );
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("sidekey: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn describe(c: &Config) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "admin: {}", c.admin.listen);
    if let Some(p) = &c.proxy {
        let unmatched = match p.unmatched {
            config::Unmatched::Deny => "deny",
            config::Unmatched::Tunnel => "tunnel",
        };
        let ca = p.ca.as_ref().map_or_else(
            || format!("generated in {}", c.state_dir.display()),
            |f| f.cert.display().to_string(),
        );
        let _ = writeln!(o, "proxy: {} (unmatched: {unmatched}; CA: {ca})", p.listen);
        if !p.allow_private.is_empty() {
            let nets: Vec<String> = p.allow_private.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(o, "  allow_private: {}", nets.join(" "));
        }
    }
    let _ = writeln!(o, "\nroutes:");
    for r in &c.routes {
        match (&r.listen, &r.host) {
            (Some(l), _) => _ = writeln!(o, "  {}: {} -> {}", r.name, l, r.upstream),
            (None, Some(h)) => _ = writeln!(o, "  {}: {h} (via [proxy]) -> {}", r.name, r.upstream),
            (None, None) => _ = writeln!(o, "  {}: -> {}", r.name, r.upstream),
        }
        if let Some(c) = r.connect_to {
            let _ = writeln!(o, "    connect_to: {c}");
        }
        if let Some(e) = &r.env {
            let _ = writeln!(o, "    sidekey exec sets: {e}");
        }
        let _ = writeln!(
            o,
            "    credential: {} ({})",
            r.credential,
            r.inject.describe()
        );
        for s in r.scope.describe() {
            let _ = writeln!(o, "    allow: {s}");
        }
        if !r.allow_browser_origins.is_empty() {
            let origins = r.allow_browser_origins.join(" ");
            let _ = writeln!(o, "    browser origins: {origins}");
        }
        if !r.allowed_hosts.is_empty() {
            let _ = writeln!(o, "    hosts: {}", r.allowed_hosts.join(" "));
        }
        if let Some(callers) = r.caller.describe() {
            let _ = writeln!(o, "    callers: {callers}");
        }
    }
    let _ = writeln!(o, "\ncredentials:");
    for cr in &c.credentials {
        let mut extra = String::new();
        if let Some(m) = cr.max_age {
            let _ = write!(extra, ", max_age {}", humantime::format_duration(m));
            if cr.enforce_max_age {
                extra.push_str(" (enforced)");
            }
        }
        if cr.min_refresh_interval != crate::credential::rejection::DEFAULT_MIN_REFRESH_INTERVAL {
            let every = humantime::format_duration(cr.min_refresh_interval);
            let _ = write!(extra, ", min_refresh_interval {every}");
        }
        let _ = writeln!(o, "  {}: {}{extra}", cr.name, cr.source.describe());
    }
    o
}

/// Prints inventory records as a table.
pub fn table(records: &[Record]) -> String {
    use std::fmt::Write;
    let now = std::time::SystemTime::now();
    let rel = |t: &Option<String>, future: bool| -> String {
        let Some(t) = t else { return "-".into() };
        let Ok(at) = humantime::parse_rfc3339(t) else {
            return t.clone();
        };
        let d = if future {
            at.duration_since(now)
        } else {
            now.duration_since(at)
        };
        match d {
            Ok(d) => {
                humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
            }
            Err(_) => {
                if future {
                    "past".into()
                } else {
                    "0s".into()
                }
            }
        }
    };
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.source.clone(),
                r.state.clone(),
                r.fingerprint.clone().unwrap_or_else(|| "-".into()),
                rel(&r.issued_at, false),
                rel(&r.expires_at, true),
                rel(&r.next_refresh_at, true),
                r.uses.to_string(),
                r.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "SOURCE",
        "STATE",
        "FINGERPRINT",
        "AGE",
        "EXPIRES IN",
        "NEXT REFRESH",
        "USES",
        "LAST ERROR",
    ];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut o = String::new();
    let line = |o: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(o, "{}", l.trim_end());
    };
    line(&mut o, &head);
    for row in &rows {
        line(&mut o, &row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    o
}

/// `sidekey exec`: runs the command and leaves with its exit status.
pub async fn exec(options: crate::app::exec::Options) -> ExitCode {
    use crate::app::exec::ExecError;
    match crate::app::exec::run(options).await {
        Ok(status) => ExitCode::from(status),
        Err(ExecError::Config(e)) => config_failure(&e),
        Err(e) => {
            eprintln!("sidekey: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct IptablesArgs {
    #[arg(short, long, env = "SIDEKEY_CONFIG", default_value = "sidekey.toml")]
    pub config: PathBuf,
    /// The UID sidekey runs as: its own connections are not redirected.
    #[arg(long)]
    pub uid: u32,
    /// Other UIDs whose connections are never redirected (a mesh proxy's, e.g. Istio's 1337).
    #[arg(long = "exclude-uid", value_delimiter = ',')]
    pub exclude_uid: Vec<u32>,
    /// Redirect only these destination ports (comma-separated; default: all TCP).
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Never redirect these destinations (address or range, repeatable or comma-separated).
    #[arg(long = "exclude-cidr", value_delimiter = ',')]
    pub exclude_cidr: Vec<String>,
    /// Print the ip6tables-restore form instead.
    #[arg(long)]
    pub ipv6: bool,
    /// Load the rules instead of printing them: iptables-restore, and
    /// ip6tables-restore too where this network namespace has IPv6 (both --noflush).
    #[arg(long, conflicts_with = "ipv6")]
    pub apply: bool,
}

/// `sidekey iptables`: prints the redirect rules for the config's `[transparent] listen`.
pub fn iptables(args: &IptablesArgs) -> ExitCode {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let Some(t) = &config.transparent else {
        eprintln!(
            "sidekey: {} has no [transparent] table: there is no listener to redirect to",
            args.config.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    if t.listen.port() == 0 {
        eprintln!(
            "sidekey: [transparent] listen has port 0: iptables needs a fixed port to redirect to"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut exclude = Vec::new();
    for c in &args.exclude_cidr {
        match crate::ipnet::IpNet::parse(c) {
            Ok(n) => exclude.push(n),
            Err(e) => {
                eprintln!("sidekey: --exclude-cidr {e}");
                return ExitCode::from(2);
            }
        }
    }
    let rules = crate::iptables::Rules {
        to_port: t.listen.port(),
        uid: args.uid,
        exclude_uids: args.exclude_uid.clone(),
        ports: args.ports.clone(),
        exclude,
        ipv6: args.ipv6,
    };
    if args.apply {
        return iptables_apply(&rules);
    }
    print!("{}", rules.render());
    ExitCode::SUCCESS
}

/// `sidekey iptables --apply`: loads the rules and says which families it loaded.
fn iptables_apply(rules: &crate::iptables::Rules) -> ExitCode {
    use crate::iptables::apply::{self, Outcome};
    match apply::apply(rules) {
        Ok(outcomes) => {
            for (family, o) in ["IPv4", "IPv6"].into_iter().zip(outcomes) {
                match o {
                    Outcome::Applied(with) => println!("sidekey: {family} rules applied ({with})"),
                    Outcome::Skipped(why) => println!("sidekey: {family} rules skipped: {why}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sidekey: {e}");
            ExitCode::FAILURE
        }
    }
}
