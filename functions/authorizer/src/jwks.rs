//! The issuer's signing keys: fetched once, cached by `kid`, fetched again
//! for an unknown `kid` (rate limited), when the set gets old, or after a
//! failed fetch (sooner).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Config;

/// A key set is a few kilobytes; anything much larger is not one.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One verification key of the issuer.
pub(crate) struct PublicKey {
    key: DecodingKey,
    kind: KeyKind,
    /// The key's `alg`, when the JWKS names it: then only that algorithm.
    alg: Option<Algorithm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
}

impl PublicKey {
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Whether a token signed with `alg` may be checked with this key: the
    /// algorithm must fit the key's type and curve, and its `alg` if any.
    /// (An RSA public key is never used as an HMAC secret, and so on.)
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        let fits = match self.kind {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::P256 => alg == Algorithm::ES256,
            KeyKind::P384 => alg == Algorithm::ES384,
        };
        fits && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("answer over {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("not a JWKS document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the discovery document is not usable: {0}")]
    Discovery(String),
}

/// The fields of an OpenID Provider metadata document used here.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

pub(crate) enum Lookup {
    Found(Arc<PublicKey>),
    /// The key set is known and has no such `kid`.
    Unknown,
    /// No key set could be fetched yet.
    Unavailable,
}

pub(crate) struct KeyStore {
    client: reqwest::Client,
    /// The discovery document's URL.
    url: String,
    issuer: String,
    /// The key set's URL, once the discovery document named it.
    jwks_uri: Mutex<Option<String>>,
    refetch_interval: Duration,
    retry_interval: Duration,
    max_age: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<PublicKey>>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last attempt, and whether it failed.
    attempted_at: Option<Instant>,
    failed: bool,
}

impl KeyStore {
    pub(crate) fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            // The key set is at the issuer's URL; a redirect elsewhere is
            // not the issuer.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url: config.discovery_url.clone(),
            issuer: config.issuer.clone(),
            jwks_uri: Mutex::new(None),
            refetch_interval: config.refetch_interval,
            retry_interval: config.retry_interval,
            max_age: config.max_age,
            state: Mutex::new(State::default()),
        })
    }

    /// Fills the cache ahead of the first token (at cold start), if no fetch
    /// happened yet. A failure is logged; the first token tries again after
    /// `retry_interval`.
    pub(crate) async fn prefetch(&self) {
        let mut state = self.state.lock().await;
        if state.attempted_at.is_none() {
            self.refresh(&mut state).await;
        }
    }

    pub(crate) async fn key(&self, kid: &str) -> Lookup {
        // One lock for lookup and fetch: concurrent callers wait for one
        // fetch instead of each starting their own.
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let old = state
            .fetched_at
            .is_some_and(|at| now.duration_since(at) >= self.max_age);
        if !old && let Some(key) = state.keys.get(kid) {
            return Lookup::Found(key.clone());
        }
        if self.may_fetch(&state, now) {
            self.refresh(&mut state).await;
        }
        match state.keys.get(kid) {
            Some(key) => Lookup::Found(key.clone()),
            None if state.fetched_at.is_none() => Lookup::Unavailable,
            None => Lookup::Unknown,
        }
    }

    fn may_fetch(&self, state: &State, now: Instant) -> bool {
        let Some(at) = state.attempted_at else {
            return true;
        };
        let wait = if state.failed {
            self.retry_interval
        } else {
            self.refetch_interval
        };
        now.duration_since(at) >= wait
    }

    async fn refresh(&self, state: &mut State) {
        let now = Instant::now();
        state.attempted_at = Some(now);
        match self.fetch().await {
            Ok(keys) => {
                info!(url = %self.url, keys = keys.len(), "JWKS fetched");
                state.keys = keys;
                state.fetched_at = Some(now);
                state.failed = false;
            }
            Err(error) => {
                // Keeps the keys it had: an issuer outage does not lock
                // everybody out until the set is max_age old again.
                tracing::error!(url = %self.url, %error, kept_keys = state.keys.len(), "JWKS fetch failed");
                state.failed = true;
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<PublicKey>>, FetchError> {
        let jwks_uri = self.jwks_uri().await?;
        parse_jwks(&self.get(&jwks_uri).await?)
    }

    /// The `jwks_uri` of the issuer's discovery document (read once, then
    /// kept; a failed read is tried again with the next fetch). The
    /// document must be the issuer's own (`issuer` equal to ours, as
    /// OpenID Connect Discovery requires) and name an https key set.
    async fn jwks_uri(&self) -> Result<String, FetchError> {
        let mut known = self.jwks_uri.lock().await;
        if let Some(uri) = &*known {
            return Ok(uri.clone());
        }
        let body = self.get(&self.url).await?;
        let discovery: Discovery =
            serde_json::from_slice(&body).map_err(|e| FetchError::Discovery(e.to_string()))?;
        if discovery.issuer != self.issuer {
            return Err(FetchError::Discovery(format!(
                "it is for issuer {:?}",
                discovery.issuer.chars().take(200).collect::<String>()
            )));
        }
        if !crate::config::trusted_url(&discovery.jwks_uri) {
            return Err(FetchError::Discovery(
                "its jwks_uri is not an https URL".into(),
            ));
        }
        info!(jwks_uri = %discovery.jwks_uri, "key set found through discovery");
        *known = Some(discovery.jwks_uri.clone());
        Ok(discovery.jwks_uri)
    }

    /// A small document at `url` (at most `MAX_JWKS_BYTES`).
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut response = self.client.get(url).send().await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Every usable signing key of a JWKS document, by `kid`. A key this
/// authorizer cannot use (encryption keys, other key types, no `kid`) is
/// skipped and logged, not a reason to refuse the others.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<PublicKey>>, FetchError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)?;
    let mut keys = HashMap::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        match public_key(value) {
            Ok((kid, key)) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(reason) => warn!(index, reason, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

fn public_key(value: serde_json::Value) -> Result<(String, PublicKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JWK this library reads")?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signing key (use)");
    }
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("no kid")?;
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return Err("unsupported curve"),
        },
        _ => return Err("unsupported key type (RSA and EC only)"),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
        Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(_) => return Err("alg is not an accepted signature algorithm"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "key parameters do not decode")?;
    let key = PublicKey { key, kind, alg };
    if let Some(alg) = alg
        && !key.accepts(alg)
    {
        return Err("alg does not fit the key type");
    }
    Ok((kid, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_usable_signing_keys_only() {
        let jwks = br#"{"keys": [
            {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "e1", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "wrong-alg", "crv": "P-256", "alg": "ES384", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"something": "else"}
        ]}"#;
        let keys = parse_jwks(jwks).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["e1", "r1"]);
        assert!(keys["r1"].accepts(Algorithm::RS256));
        assert!(!keys["r1"].accepts(Algorithm::PS256), "alg RS256 pins it");
        assert!(!keys["r1"].accepts(Algorithm::HS256));
        assert!(keys["e1"].accepts(Algorithm::ES256));
        assert!(!keys["e1"].accepts(Algorithm::ES384));
        assert!(!keys["e1"].accepts(Algorithm::RS256));
    }

    #[test]
    fn refuses_what_is_not_a_key_set() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(br#"{"keys": {}}"#).is_err());
        assert!(parse_jwks(br#"{"keys": []}"#).unwrap().is_empty());
    }
}
