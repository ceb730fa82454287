//! The open-file limit: raised to its hard limit at start, and shared out between the listeners so held connections cannot starve the rest.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Descriptors kept back for everything that is not a client connection:
/// the admin listener's own cap comes on top, credential files, sources'
/// connections, the config watcher, logs.
const RESERVED: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs both.
/// Returns the soft limit in force afterwards.
pub fn raise() -> u64 {
    let before = getrlimit(Resource::Nofile);
    let mut wanted = before;
    wanted.current = before.maximum;
    let now = match before.current == before.maximum {
        true => before,
        false => match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => getrlimit(Resource::Nofile),
            Err(e) => {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
                before
            }
        },
    };
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    tracing::info!(
        soft = show(now.current).as_str(),
        hard = show(now.maximum).as_str(),
        was = show(before.current).as_str(),
        "open-file limit"
    );
    now.current.unwrap_or(u64::MAX)
}

/// The soft open-file limit now.
pub fn current() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The most connections one of `routes` route listeners may hold so that
/// all of them together, each connection with its upstream connection,
/// plus the admin listener's `admin` fit under `limit` descriptors.
pub fn route_share(limit: u64, routes: usize, admin: usize) -> usize {
    let spare = limit.saturating_sub(RESERVED + admin as u64);
    let share = spare / (2 * routes.max(1) as u64);
    usize::try_from(share).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::route_share;

    #[test]
    fn shares_fit_the_limit() {
        assert_eq!(route_share(1024, 1, 64), 448);
        assert_eq!(route_share(1024, 2, 64), 224);
        assert_eq!(route_share(200, 4, 64), 9);
        assert_eq!(route_share(10, 4, 64), 1);
    }
}
