//! API errors and the one place where they become HTTP statuses and bodies.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error of the API: status 4xx or 5xx with this body.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// Stable, for programs: `invalid_parameter`, `not_found`, `forbidden`, ...
    code: &'a str,
    /// For people; never an internal error's text.
    message: String,
    /// With `invalid_parameter`: the parameter (or body field) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
    /// With `internal` and `unavailable`: where the cause is in the logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidParameter { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The caller may not do this (a scope it lacks, anonymous writes off,
    /// an Origin the local server refuses).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An idempotency key sent again with another body.
    #[error("{0}")]
    KeyReused(String),
    #[error("method {method} is not allowed here")]
    MethodNotAllowed { method: String, allow: String },
    /// Something failed on our side; `correlation_id` is in the logs with
    /// the cause, which is never sent to the client.
    #[error("internal error")]
    Internal { correlation_id: String },
    #[error("the service is busy; retry shortly")]
    Unavailable { correlation_id: String },
}

impl ApiError {
    pub fn invalid(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::KeyReused(_) => "idempotency_key_reused",
            ApiError::Internal { .. } => "internal",
            ApiError::Unavailable { .. } => "unavailable",
        }
    }

    pub fn into_response(self) -> Response<Bytes> {
        let (parameter, correlation_id) = match &self {
            ApiError::InvalidParameter { parameter, .. } => (Some(parameter.as_str()), None),
            ApiError::Internal { correlation_id } | ApiError::Unavailable { correlation_id } => {
                (None, Some(correlation_id.as_str()))
            }
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                parameter,
                correlation_id,
            },
        };
        let mut response = super::json_response(self.status(), &body);
        if let ApiError::MethodNotAllowed { allow, .. } = self
            && let Ok(allow) = header::HeaderValue::from_str(&allow)
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}
