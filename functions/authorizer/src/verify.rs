//! Checking a token: its header against the issuer's keys, its signature,
//! then `iss`, `aud`, `exp`, `nbf` and `sub`.

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::Config;
use crate::jwks::{KeyStore, Lookup};

/// Asymmetric algorithms only: the keys come from a public JWKS, so a
/// symmetric `HS*` token would be "signed" with public data.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Far above any real access token; bounds the work of a garbage one.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. For the logs only: the client is told nothing
/// but "denied".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("no token (query string `token` or Authorization: Bearer)")]
    NoToken,
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("no kid in the token header")]
    NoKeyId,
    #[error("the issuer has no key with this kid")]
    UnknownKey,
    #[error("the issuer's keys could not be fetched")]
    KeysUnavailable,
    #[error("the key does not fit the token's algorithm")]
    KeyMismatch,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("missing claim {0}")]
    MissingClaim(String),
    #[error("invalid claims")]
    Claims,
}

impl Denied {
    /// A short stable name for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::NoToken => "no_token",
            Denied::Malformed => "malformed",
            Denied::Algorithm => "algorithm",
            Denied::NoKeyId => "no_kid",
            Denied::UnknownKey => "unknown_kid",
            Denied::KeysUnavailable => "keys_unavailable",
            Denied::KeyMismatch => "key_mismatch",
            Denied::Signature => "signature",
            Denied::Expired => "expired",
            Denied::NotYetValid => "not_yet_valid",
            Denied::Issuer => "issuer",
            Denied::Audience => "audience",
            Denied::MissingClaim(_) => "missing_claim",
            Denied::Claims => "claims",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    /// Defaulted so that a token without `sub` is reported as such by the
    /// required-claims check rather than as undecodable.
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: Option<Audience>,
    /// Cognito access tokens name their app client here and have no `aud`.
    #[serde(default)]
    client_id: Option<String>,
    /// The granted scopes, space separated (RFC 8693 / Cognito).
    #[serde(default)]
    scope: Option<String>,
    /// The granted scopes as some issuers write them (Okta, Entra ID): an
    /// array, or a space separated string.
    #[serde(default)]
    scp: Option<Scopes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Spaced(String),
    Listed(Vec<String>),
}

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    /// Its scopes (`scope`, else `scp`), in the token's order.
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies tokens of one issuer for one set of audiences.
pub struct Verifier {
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
    keys: KeyStore,
}

impl Verifier {
    /// Builds the HTTP client for the key set; fetches nothing yet.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        Ok(Self {
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            leeway: config.leeway.as_secs(),
            keys: KeyStore::new(config)?,
        })
    }

    /// Fetches the issuer's keys now (at cold start, so the first connection
    /// does not wait for the TLS handshake and the fetch). Never fails: a
    /// failure is logged and retried on use.
    pub async fn prefetch(&self) {
        self.keys.prefetch().await;
    }

    /// The token's `sub` and scopes, if the token is valid.
    pub async fn verify(&self, token: &str) -> Result<Verified, Denied> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Denied::Malformed);
        }
        let header = decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => Denied::Algorithm,
            _ => Denied::Malformed,
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Denied::Algorithm);
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(Denied::NoKeyId)?;
        let key = match self.keys.key(&kid).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(Denied::UnknownKey),
            Lookup::Unavailable => return Err(Denied::KeysUnavailable),
        };
        if !key.accepts(header.alg) {
            return Err(Denied::KeyMismatch);
        }
        let claims = decode::<Claims>(token, key.decoding_key(), &self.validation(header.alg))
            .map_err(|e| denied(e.into_kind()))?
            .claims;
        if claims.sub.is_empty() {
            return Err(Denied::MissingClaim("sub".into()));
        }
        self.check_audience(&claims)?;
        let scopes = match (claims.scope, claims.scp) {
            (Some(spaced), _) | (None, Some(Scopes::Spaced(spaced))) => {
                spaced.split_whitespace().map(str::to_owned).collect()
            }
            (None, Some(Scopes::Listed(listed))) => listed,
            (None, None) => Vec::new(),
        };
        Ok(Verified {
            sub: claims.sub,
            scopes,
        })
    }

    /// As API Gateway's JWT authorizer does for the HTTP API, so that one
    /// token opens both: `aud` must name one of ours, and only a token
    /// without `aud` is judged by its `client_id`.
    fn check_audience(&self, claims: &Claims) -> Result<(), Denied> {
        let ours = |a: &String| self.audiences.contains(a);
        let accepted = match (&claims.aud, &claims.client_id) {
            (Some(Audience::One(aud)), _) => ours(aud),
            (Some(Audience::Many(auds)), _) => auds.iter().any(ours),
            (None, Some(client_id)) => ours(client_id),
            (None, None) => return Err(Denied::MissingClaim("aud".into())),
        };
        if accepted {
            Ok(())
        } else {
            Err(Denied::Audience)
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        // Exactly the header's algorithm, already checked against the key.
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        // `aud` (or `client_id`) is checked after decoding: check_audience.
        validation.validate_aud = false;
        // Without these in the set, a token lacking the claim would skip
        // its check.
        validation.required_spec_claims = ["exp", "iss", "sub"]
            .into_iter()
            .map(String::from)
            .collect::<HashSet<_>>();
        validation
    }
}

fn denied(kind: ErrorKind) -> Denied {
    match kind {
        ErrorKind::InvalidSignature => Denied::Signature,
        ErrorKind::ExpiredSignature => Denied::Expired,
        ErrorKind::ImmatureSignature => Denied::NotYetValid,
        ErrorKind::InvalidIssuer => Denied::Issuer,
        ErrorKind::InvalidAudience => Denied::Audience,
        ErrorKind::MissingRequiredClaim(claim) => Denied::MissingClaim(claim),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => Denied::Algorithm,
        // A key the issuer published but the crypto library rejects.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            Denied::KeyMismatch
        }
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => Denied::Malformed,
        _ => Denied::Claims,
    }
}
