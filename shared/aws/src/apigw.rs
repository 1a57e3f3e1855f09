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
            Err(e) => Err(notify_error(e)),
        }
    }
}

fn notify_error(err: SdkError<PostToConnectionError, HttpResponse>) -> NotifyError {
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err() {
                PostToConnectionError::GoneException(_) => NotifyError::Gone,
                PostToConnectionError::PayloadTooLargeException(_) => NotifyError::TooLarge,
                PostToConnectionError::LimitExceededException(_) => {
                    NotifyError::Unavailable(Box::new(err))
                }
                _ if status == 410 => NotifyError::Gone,
                _ if status == 413 => NotifyError::TooLarge,
                _ if status == 429 || status >= 500 => NotifyError::Unavailable(Box::new(err)),
                _ => NotifyError::Permanent(Box::new(err)),
            }
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => {
            NotifyError::Permanent(Box::new(err))
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) | SdkError::DispatchFailure(_) => {
            NotifyError::Unavailable(Box::new(err))
        }
        _ => NotifyError::Permanent(Box::new(err)),
    }
}
