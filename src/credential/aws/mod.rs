//! `source = "aws"`: AWS credentials for SigV4 from static keys, the environment, web identity, an assumed role, the container endpoint or EC2 IMDSv2.
//!
//! Each fetch resolves the configured origin anew (a web identity token
//! file is re-read every time) and hands the rotation engine the value with
//! its `Expiration`, so refreshes follow the engine's rules.

mod container;
mod form;
mod http;
mod imds;
mod keys;
mod sts;

pub use form::parse;

use super::secret_ref::SecretRef;
use super::{BoxFuture, Issued, Source, SourceError};
use crate::material::MaterialKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the base credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Keys from `{ file }` / `{ env }` references, re-read on change.
    Static {
        access_key_id: SecretRef,
        secret_access_key: SecretRef,
        session_token: Option<SecretRef>,
    },
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Env,
    /// `AssumeRoleWithWebIdentity` with a token file (config keys, else
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` / `AWS_ROLE_ARN`).
    WebIdentity {
        token_file: Option<PathBuf>,
        role_arn: Option<String>,
    },
    /// The ECS / EKS Pod Identity container credentials endpoint.
    Container {
        endpoint: Option<String>,
        token_file: Option<PathBuf>,
    },
    /// EC2 instance metadata, IMDSv2.
    Imds { endpoint: Option<String> },
    /// The SDK's order, decided at each fetch from the environment:
    /// environment keys, web identity, container endpoint, IMDS.
    Chain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSpec {
    pub origin: Origin,
    /// `AssumeRole` into this role with the base credentials.
    pub assume_role_arn: Option<String>,
    pub session_name: String,
    /// Requested lifetime of STS credentials.
    pub duration: Option<Duration>,
    /// Region for STS (its endpoint and signature).
    pub region: String,
    /// STS endpoint; default `https://sts.{region}.amazonaws.com`.
    pub sts_endpoint: Option<String>,
    /// How often static key files are read again without a change event.
    pub poll_interval: Duration,
}

impl AwsSpec {
    pub fn sts_endpoint(&self) -> String {
        self.sts_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region))
    }

    /// What `sidekey check` shows.
    pub fn describe(&self) -> String {
        let origin = match &self.origin {
            Origin::Static { access_key_id, .. } => {
                format!("static keys ({})", access_key_id.describe())
            }
            Origin::Env => "environment keys".into(),
            Origin::WebIdentity {
                token_file,
                role_arn,
            } => format!(
                "web identity ({}) for {}",
                token_file
                    .as_ref()
                    .map_or("AWS_WEB_IDENTITY_TOKEN_FILE".into(), |p| p
                        .display()
                        .to_string()),
                role_arn.as_deref().unwrap_or("AWS_ROLE_ARN")
            ),
            Origin::Container { .. } => "container credentials endpoint".into(),
            Origin::Imds { .. } => "EC2 instance metadata (IMDSv2)".into(),
            Origin::Chain => "default chain (env, web identity, container, IMDS)".into(),
        };
        match self.assume_role() {
            Some(role) => format!("aws {origin}, then AssumeRole {role}"),
            None => format!("aws {origin}"),
        }
    }

    /// The role to assume from the base credentials, if any. With web
    /// identity, `role_arn` is the web identity role instead.
    fn assume_role(&self) -> Option<&str> {
        match self.origin {
            Origin::WebIdentity { .. } => None,
            _ => self.assume_role_arn.as_deref(),
        }
    }

    /// `sidekey check`: are the files this source reads there?
    pub fn probe(&self) -> Result<(), String> {
        match &self.origin {
            Origin::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                for r in [
                    Some(access_key_id),
                    Some(secret_access_key),
                    session_token.as_ref(),
                ]
                .into_iter()
                .flatten()
                {
                    r.read_blocking().map_err(|e| e.0)?;
                }
                Ok(())
            }
            Origin::WebIdentity {
                token_file: Some(p),
                ..
            } => std::fs::read(p)
                .map(|_| ())
                .map_err(|e| format!("cannot read {}: {e}", p.display())),
            _ => Ok(()),
        }
    }
}

pub struct AwsSource {
    spec: AwsSpec,
    http: http::Http,
}

impl AwsSource {
    pub fn new(spec: AwsSpec) -> Self {
        AwsSource {
            spec,
            http: http::Http::new(),
        }
    }

    async fn base(&self) -> Result<Issued, SourceError> {
        let spec = &self.spec;
        match &spec.origin {
            Origin::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => keys::from_refs(access_key_id, secret_access_key, session_token.as_ref()).await,
            Origin::Env => keys::from_env(),
            Origin::WebIdentity {
                token_file,
                role_arn,
            } => {
                sts::web_identity(&self.http, spec, token_file.as_deref(), role_arn.as_deref())
                    .await
            }
            Origin::Container {
                endpoint,
                token_file,
            } => container::fetch(&self.http, endpoint.as_deref(), token_file.as_deref()).await,
            Origin::Imds { endpoint } => imds::fetch(&self.http, endpoint.as_deref()).await,
            Origin::Chain => {
                if keys::env_present() {
                    keys::from_env()
                } else if sts::web_identity_env_present() {
                    sts::web_identity(&self.http, spec, None, None).await
                } else if container::env_present() {
                    container::fetch(&self.http, None, None).await
                } else {
                    imds::fetch(&self.http, None).await
                }
            }
        }
    }
}

impl Source for AwsSource {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let base = self.base().await?;
            match self.spec.assume_role() {
                None => Ok(base),
                Some(role) => sts::assume_role(&self.http, &self.spec, role, &base).await,
            }
        })
    }

    fn watch_paths(&self) -> Vec<PathBuf> {
        match &self.spec.origin {
            Origin::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => [
                Some(access_key_id),
                Some(secret_access_key),
                session_token.as_ref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|r| match r {
                SecretRef::File(p) => Some(p.clone()),
                SecretRef::Env(_) => None,
            })
            .collect(),
            _ => Vec::new(),
        }
    }

    fn reread_every(&self) -> Option<Duration> {
        match &self.spec.origin {
            Origin::Static { .. } => Some(self.spec.poll_interval),
            _ => None,
        }
    }
}

impl crate::credential::spec::SourceSettings for AwsSpec {
    fn kind(&self) -> &'static str {
        "aws"
    }

    fn build(&self) -> Arc<dyn Source> {
        Arc::new(AwsSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        AwsSpec::describe(self)
    }

    fn probe(&self) -> Result<(), crate::parse::FieldError> {
        AwsSpec::probe(self).map_err(|message| crate::parse::FieldError {
            field: None,
            message,
        })
    }

    fn material(&self) -> MaterialKind {
        MaterialKind::AwsKeys
    }
}
