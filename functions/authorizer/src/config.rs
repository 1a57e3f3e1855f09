//! The authorizer's settings: the issuer and audiences from the environment,
//! and the timings of the key cache.

use std::time::Duration;

use reqwest::Url;

/// The issuer's OpenID Provider metadata, relative to the issuer URL
/// (OpenID Connect Discovery 1.0, section 4): its `jwks_uri` names where
/// the signing keys are, which is not the same path at every provider.
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Reads `VARIABLE: message`, as the other functions' configuration
/// errors do, in `Display` and in `Debug` (what `main` prints when it
/// returns the error).
#[derive(thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0}: not set (or empty)")]
    Missing(&'static str),
    #[error(
        "JWT_ISSUER: must be an https:// URL (http:// only on a loopback host, for tests): {0:?}"
    )]
    Issuer(String),
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The exact `iss` a token must carry.
    pub issuer: String,
    /// A token's `aud` must name one of these.
    pub audiences: Vec<String>,
    /// The issuer's discovery document, which names its key set.
    pub discovery_url: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// After a successful fetch, an unknown `kid` refetches the key set at
    /// most this often: a flood of forged `kid`s cannot turn into a flood
    /// of requests to the issuer.
    pub refetch_interval: Duration,
    /// After a failed fetch (issuer down), the next attempt waits this long,
    /// so an outage costs the issuer one request per interval per instance
    /// and a recovered issuer is used again soon.
    pub retry_interval: Duration,
    /// A key set this old is fetched again on its next use, so a key the
    /// issuer withdrew stops being accepted. If that fetch fails the old
    /// set stays in use.
    pub max_age: Duration,
    /// Whole JWKS request, connect to last byte.
    pub fetch_timeout: Duration,
}

impl Config {
    /// `audiences` is comma separated, as in the template's `JwtAudience`.
    pub fn new(issuer: &str, audiences: &str) -> Result<Self, ConfigError> {
        let issuer = issuer.trim();
        if issuer.is_empty() {
            return Err(ConfigError::Missing("JWT_ISSUER"));
        }
        check_issuer(issuer)?;
        let audiences: Vec<String> = audiences
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        if audiences.is_empty() {
            return Err(ConfigError::Missing("JWT_AUDIENCE"));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audiences,
            discovery_url: format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/')),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(60),
            retry_interval: Duration::from_secs(5),
            max_age: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(3),
        })
    }

    /// `JWT_ISSUER` and `JWT_AUDIENCE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let issuer = std::env::var("JWT_ISSUER").unwrap_or_default();
        let audiences = std::env::var("JWT_AUDIENCE").unwrap_or_default();
        Self::new(&issuer, &audiences)
    }
}

/// The keys come from the issuer URL, so it must be authenticated: https,
/// or plain http to this machine (the tests' JWKS server).
fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    if trusted_url(issuer) {
        Ok(())
    } else {
        Err(ConfigError::Issuer(issuer.to_owned()))
    }
}

/// https, or plain http to this machine: the issuer, and the `jwks_uri`
/// its discovery document names.
pub(crate) fn trusted_url(url: &str) -> bool {
    check_url(url).is_ok()
}

fn check_url(issuer: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::Issuer(issuer.to_owned());
    let url = Url::parse(issuer).map_err(|_| bad())?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_and_audiences() {
        let c = Config::new("https://idp.example.com/", "web, cli,,").unwrap();
        assert_eq!(c.issuer, "https://idp.example.com/");
        assert_eq!(c.audiences, ["web", "cli"]);
        assert_eq!(
            c.discovery_url,
            "https://idp.example.com/.well-known/openid-configuration"
        );
        let c = Config::new(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "x",
        )
        .unwrap();
        assert_eq!(
            c.discovery_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/openid-configuration"
        );
    }

    #[test]
    fn refuses_what_cannot_be_trusted() {
        assert_eq!(
            Config::new("", "a").unwrap_err(),
            ConfigError::Missing("JWT_ISSUER")
        );
        assert_eq!(
            Config::new("https://idp.example.com", " , ").unwrap_err(),
            ConfigError::Missing("JWT_AUDIENCE")
        );
        for issuer in [
            "http://idp.example.com",
            "idp.example.com",
            "ftp://idp.example.com",
        ] {
            assert!(
                matches!(Config::new(issuer, "a"), Err(ConfigError::Issuer(_))),
                "{issuer}"
            );
        }
        assert!(Config::new("http://127.0.0.1:8080", "a").is_ok());
        assert!(Config::new("http://localhost:8080/realm", "a").is_ok());
    }
}
