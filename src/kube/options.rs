//! The options of `sidekey inject`: which mode, which image, which config map and secrets.

use std::path::PathBuf;

/// Where the app's traffic comes from (DESIGN.md "Destination-routed modes").
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The app calls `http://127.0.0.1:PORT` of a route; nothing on the app changes.
    Reverse,
    /// The app gets `HTTPS_PROXY`/`HTTP_PROXY` and sidekey's CA to trust.
    Proxy,
    /// An init container redirects the pod's egress to sidekey; the app gets sidekey's CA to trust.
    Transparent,
}

/// `sidekey inject`: adds sidekey as a native sidecar to Kubernetes manifests.
#[derive(clap::Args, Debug, Clone)]
pub struct InjectArgs {
    /// Manifest file to read, or `-` for standard input. It is never changed.
    #[arg(short = 'f', long = "filename", value_name = "FILE|-")]
    pub file: PathBuf,
    /// Config map holding `sidekey.toml` (default: `<workload name>-sidekey`).
    #[arg(long, value_name = "NAME", value_parser = dns_label)]
    pub config_map: Option<String>,
    /// How the app's requests reach sidekey.
    #[arg(long, value_enum, default_value = "reverse")]
    pub mode: Mode,
    /// The sidekey image (runs as a numeric non-root UID, no shell).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE, value_parser = image)]
    pub image: String,
    /// The image of the set-up init containers (iptables, CA bundle): it needs a shell.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_INIT_IMAGE, value_parser = image)]
    pub init_image: String,
    /// A Secret mounted read-only into the sidekey container only, at
    /// `/var/run/secrets/NAME` (repeatable).
    #[arg(long = "secret", value_name = "NAME", value_parser = dns_label)]
    pub secrets: Vec<String>,
    /// Audience of the projected service-account token sidekey presents in token exchanges.
    #[arg(long, value_name = "AUDIENCE", default_value = "sidekey")]
    pub token_audience: String,
    /// The port of `[admin] listen`, probed by the kubelet.
    #[arg(long, value_name = "PORT", default_value_t = 9901)]
    pub admin_port: u16,
    /// The port of `[proxy] listen` (proxy mode).
    #[arg(long, value_name = "PORT", default_value_t = 3128)]
    pub proxy_port: u16,
    /// The numeric UID sidekey runs as; transparent mode exempts it from the redirect.
    #[arg(long, value_name = "UID", default_value_t = 65532, value_parser = clap::value_parser!(u32).range(1..))]
    pub uid: u32,
}

pub const DEFAULT_IMAGE: &str = concat!("sidekey:", env!("CARGO_PKG_VERSION"));
pub const DEFAULT_INIT_IMAGE: &str = concat!("sidekey:", env!("CARGO_PKG_VERSION"), "-init");

/// A DNS label (RFC 1123) short enough to carry the `sidekey-secret-` prefix in a volume name.
fn dns_label(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 48
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err("must be lowercase letters, digits and '-', at most 48 characters, not starting or ending with '-'".into())
    }
}

/// An image reference: no spaces, quotes or control characters.
fn image(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'#'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err("is not an image reference (registry/name:tag or name@sha256:...)".into())
    }
}
