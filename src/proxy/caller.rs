//! Caller authentication: only the workload may ride a route's credential (peer UID/GID from the kernel, or a caller token).

use super::router::Connection;
use crate::config::CallerRules;
use crate::secret::Secret;
use crate::secret_ref::ReadError;
use crate::throttle::Throttle;
use http::HeaderMap;
use http::header::HeaderName;

/// The header an app sends its caller token in; removed from every request
/// before forwarding, whether the route checks a token or not.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("sidekey-caller-token");

/// A route's caller rules with the token read, as the request path uses them.
#[derive(Default)]
pub struct Caller {
    allow_uids: Vec<u32>,
    allow_gids: Vec<u32>,
    token: Option<Secret>,
    /// The route's `caller_refused` events: a loop of refused requests
    /// logs one a second, with a count of the rest.
    pub refusals: Throttle,
}

impl Caller {
    /// Reads the token (at start and on every reload).
    pub fn build(rules: &CallerRules) -> Result<Caller, ReadError> {
        Ok(Caller {
            allow_uids: rules.allow_uids.clone(),
            allow_gids: rules.allow_gids.clone(),
            token: rules
                .token
                .as_ref()
                .map(|t| t.read_blocking())
                .transpose()?,
            refusals: Throttle::new(),
        })
    }

    /// Lets the request through, or says why not (never with the token).
    /// The token header is removed either way.
    pub async fn admit(&self, conn: &Connection, headers: &mut HeaderMap) -> Result<(), String> {
        let presented = headers.remove(TOKEN_HEADER);
        if let Some(token) = &self.token {
            match presented {
                None => {
                    return Err(format!(
                        "this route needs a caller token in the `{TOKEN_HEADER}` header"
                    ));
                }
                Some(p) if !token.ct_eq(p.as_bytes()) => {
                    return Err(format!(
                        "the `{TOKEN_HEADER}` header does not hold this route's caller token"
                    ));
                }
                Some(_) => {}
            }
        }
        if self.allow_uids.is_empty() && self.allow_gids.is_empty() {
            return Ok(());
        }
        let Some(ids) = conn.peer_ids().await else {
            return Err("the caller's user could not be identified (its socket is not in this host's socket table); this route admits only listed users".into());
        };
        let uid_ok = self.allow_uids.contains(&ids.uid);
        let gid_ok = ids.gid.is_some_and(|g| self.allow_gids.contains(&g));
        match uid_ok || gid_ok {
            true => Ok(()),
            false => Err(match ids.gid {
                Some(gid) => format!(
                    "uid {} gid {gid} may not use this route (allow_uids, allow_gids)",
                    ids.uid
                ),
                None => format!("uid {} may not use this route (allow_uids)", ids.uid),
            }),
        }
    }
}
