//! The notifier on API Gateway's Management API (`PostToConnection`).
//! Its endpoint is the WebSocket API's stage URL (`WEBSOCKET_ENDPOINT`,
//! `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`), or the
//! local server, which serves the same API at `/@connections/{id}`.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::sdk_error::{CallError, Fault, classify};
use people_app::ports::{Notifier, NotifyError};

/// Posts in flight at once, per notifier. A burst (a result for thousands
/// of subscribers) queues here rather than opening a connection per post:
/// the SDK's pool reuses the ones it has, and API Gateway's rate limit on
/// the Management API is not hit all at once.
pub const MAX_IN_FLIGHT: usize = 64;

pub struct ManagementApiNotifier {
    client: Client,
    in_flight: tokio::sync::Semaphore,
}

impl ManagementApiNotifier {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// A client for the Management API at `endpoint`, with the rest of the
    /// configuration (region, credentials, retries) from `config`.
    pub fn at(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint)
            .build();
        Self::new(Client::from_conf(conf))
    }
}

#[async_trait]
impl Notifier for ManagementApiNotifier {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => Err(notify_error(connection_id, e)),
        }
    }
}

/// A failed post as a `NotifyError`: a connection that is gone (410) and a
/// message too large (413) are outcomes of their own; the rest is as
/// [`classify`] finds it, the SDK error kept as the source.
fn notify_error(
    connection_id: &str,
    err: SdkError<PostToConnectionError, HttpResponse>,
) -> NotifyError {
    let fault = classify(&err);
    let err = || {
        Box::new(CallError::new(
            "API Gateway Management API",
            "PostToConnection",
            "connection",
            connection_id,
            err,
        ))
    };
    match fault {
        Fault::Gone => NotifyError::Gone,
        Fault::TooLarge => NotifyError::TooLarge,
        Fault::Transient => NotifyError::Unavailable(err()),
        _ => NotifyError::Permanent(err()),
    }
}
