//! Who is calling, and what they may do.
//!
//! Two scopes, as the issuer puts them in a token's `scope` claim (and
//! API Gateway's JWT authorizer checks them as `AuthorizationScopes`):
//! [`READ_SCOPE`] reads people and runs reports, [`WRITE_SCOPE`] imports
//! people. Every route that writes names the write scope in
//! [`needs_write`]; template.yaml lists the same scopes on its routes, and
//! scripts/check_iam.py holds the two together.
//!
//! A caller with a token is a [`Caller::User`]; its requests belong to its
//! `sub`. Without a token (a stack without JWT, the local server) a caller
//! is [`Caller::Anonymous`]: it may read, and it may write only where
//! anonymous writes were turned on (`ALLOW_ANONYMOUS_WRITES`, the stack's
//! `AllowAnonymousWrites`; off by default).

use std::collections::HashMap;

use serde_json::Value;

use crate::jobs::JobKind;

/// Reads: `GET /people`, `/people/{id}`, `/filters`, reports, and one's
/// own requests.
pub const READ_SCOPE: &str = "people:read";
/// Writes: imports, deletes, and `PUT` / `DELETE /people/{id}`.
pub const WRITE_SCOPE: &str = "people:write";

/// The caller of one HTTP request or WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Caller {
    /// No token: no authorizer is configured.
    #[default]
    Anonymous,
    /// A verified token: its `sub` and its scopes.
    User { sub: String, scopes: Vec<String> },
}

/// Why a caller may not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this needs the {0} scope, which the token does not carry")]
    MissingScope(&'static str),
    #[error(
        "anonymous writes are turned off: send a token with the {WRITE_SCOPE} scope (or deploy with AllowAnonymousWrites=true)"
    )]
    AnonymousWrite,
}

/// The scope a job needs: imports write, reports read.
pub fn needs_write(kind: JobKind) -> bool {
    match kind {
        JobKind::Import | JobKind::Delete => true,
        JobKind::Report => false,
    }
}

impl Caller {
    /// The owner recorded on this caller's requests: its `sub`, or none.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::User { sub, .. } => Some(sub),
        }
    }

    fn has(&self, scope: &str) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::User { scopes, .. } => scopes.iter().any(|s| s == scope),
        }
    }

    /// May this caller read?
    pub fn may_read(&self) -> Result<(), Denied> {
        match self {
            Caller::Anonymous => Ok(()),
            _ if self.has(READ_SCOPE) => Ok(()),
            _ => Err(Denied::MissingScope(READ_SCOPE)),
        }
    }

    /// May this caller write, where anonymous writes are
    /// `anonymous_writes`?
    pub fn may_write(&self, anonymous_writes: bool) -> Result<(), Denied> {
        match self {
            Caller::Anonymous if anonymous_writes => Ok(()),
            Caller::Anonymous => Err(Denied::AnonymousWrite),
            _ if self.has(WRITE_SCOPE) => Ok(()),
            _ => Err(Denied::MissingScope(WRITE_SCOPE)),
        }
    }

    /// May this caller submit a job of `kind`?
    pub fn may_submit(&self, kind: JobKind, anonymous_writes: bool) -> Result<(), Denied> {
        if needs_write(kind) {
            self.may_write(anonymous_writes)
        } else {
            self.may_read()
        }
    }

    /// May this caller see a request that belongs to `owner`? Only its own:
    /// a user sees the requests of its `sub`, an anonymous caller those
    /// without an owner.
    pub fn owns(&self, owner: Option<&str>) -> bool {
        self.owner() == owner
    }

    /// The caller the WebSocket `$connect` authorizer let through: the
    /// `sub` and `scope` (space separated) of its context, which API
    /// Gateway passes with every event of the connection. No authorizer:
    /// anonymous.
    pub fn from_ws_authorizer(fields: &HashMap<String, Value>) -> Self {
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        match text("sub") {
            None => Caller::Anonymous,
            sub => Caller::user(sub, split_scopes(text("scope"))),
        }
    }

    /// The caller of a verified token with the claim `sub` and `scopes`
    /// (what an authorizer let through). A token without `sub` (which both
    /// authorizers refuse) is a user who owns nothing anyone else can name
    /// and may do nothing.
    pub fn user(sub: Option<&str>, scopes: Vec<String>) -> Self {
        match sub.filter(|s| !s.is_empty()) {
            Some(sub) => Caller::User {
                sub: sub.to_owned(),
                scopes,
            },
            None => Caller::User {
                sub: String::new(),
                scopes: Vec::new(),
            },
        }
    }
}

/// The scopes of a `scope` claim (space separated); none, no scopes.
pub fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(scopes: &[&str]) -> Caller {
        Caller::User {
            sub: "u1".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reports_need_the_read_scope_and_imports_the_write_scope() {
        let reader = user(&[READ_SCOPE]);
        let writer = user(&[WRITE_SCOPE]);
        assert_eq!(reader.may_submit(JobKind::Report, false), Ok(()));
        assert_eq!(
            reader.may_submit(JobKind::Import, true),
            Err(Denied::MissingScope(WRITE_SCOPE))
        );
        assert_eq!(writer.may_submit(JobKind::Import, false), Ok(()));
        assert_eq!(
            writer.may_submit(JobKind::Report, false),
            Err(Denied::MissingScope(READ_SCOPE))
        );
    }

    #[test]
    fn anonymous_callers_read_and_write_only_when_turned_on() {
        assert_eq!(Caller::Anonymous.may_submit(JobKind::Report, false), Ok(()));
        assert_eq!(
            Caller::Anonymous.may_submit(JobKind::Import, false),
            Err(Denied::AnonymousWrite)
        );
        assert_eq!(Caller::Anonymous.may_submit(JobKind::Import, true), Ok(()));
    }

    #[test]
    fn a_request_is_seen_by_its_owner_only() {
        let u1 = user(&[READ_SCOPE]);
        assert!(u1.owns(Some("u1")));
        assert!(!u1.owns(Some("u2")));
        assert!(!u1.owns(None));
        assert!(Caller::Anonymous.owns(None));
        assert!(!Caller::Anonymous.owns(Some("u1")));
    }

    #[test]
    fn the_ws_authorizer_context_gives_sub_and_scopes() {
        let fields: HashMap<String, Value> = serde_json::from_value(serde_json::json!({
            "principalId": "u9", "sub": "u9", "scope": "people:read"
        }))
        .unwrap();
        assert_eq!(
            Caller::from_ws_authorizer(&fields),
            Caller::User {
                sub: "u9".into(),
                scopes: vec![READ_SCOPE.into()]
            }
        );
        assert_eq!(
            Caller::from_ws_authorizer(&HashMap::new()),
            Caller::Anonymous
        );
    }
}
