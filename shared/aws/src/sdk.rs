//! The AWS SDK configuration of a process and the clients built from it.
//!
//! A process makes one [`Aws`] in `main` and hands it to every wiring
//! function (`crate::wiring`). The configuration is read from the
//! environment the first time an adapter needs it, and never when every
//! adapter is in memory (`cargo lambda watch` with the code's defaults
//! needs no credentials and reads no AWS configuration). Each service's
//! client is built once from it; the adapters get clones, which share the
//! client's connection pool.

use aws_config::SdkConfig;
use tokio::sync::OnceCell;

/// One SDK configuration, and at most one client per service, for a
/// whole process.
#[derive(Debug, Default)]
pub struct Aws {
    config: OnceCell<SdkConfig>,
    #[cfg(feature = "dynamodb")]
    dynamodb: OnceCell<aws_sdk_dynamodb::Client>,
    #[cfg(feature = "sqs")]
    sqs: OnceCell<aws_sdk_sqs::Client>,
    #[cfg(feature = "s3")]
    s3: OnceCell<aws_sdk_s3::Client>,
}

impl Aws {
    /// The configuration from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`), read when an adapter first needs it.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// `config` instead of the environment's (tests, emulators).
    pub fn with_config(config: SdkConfig) -> Self {
        Self {
            config: OnceCell::new_with(Some(config)),
            ..Self::default()
        }
    }

    /// Whether the configuration has been read (false while every
    /// adapter opened so far is in memory).
    pub fn is_loaded(&self) -> bool {
        self.config.initialized()
    }

    /// The configuration, read from the environment on the first call.
    pub async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(aws_config).await
    }

    #[cfg(feature = "dynamodb")]
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let config = self.config().await;
        self.dynamodb
            .get_or_init(|| async { aws_sdk_dynamodb::Client::new(config) })
            .await
            .clone()
    }

    #[cfg(feature = "sqs")]
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        let config = self.config().await;
        self.sqs
            .get_or_init(|| async { aws_sdk_sqs::Client::new(config) })
            .await
            .clone()
    }

    /// The S3 client; path-style addressing when an endpoint is configured
    /// (an emulator on 127.0.0.1 has no bucket host names).
    #[cfg(feature = "s3")]
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = self.config().await;
        self.s3
            .get_or_init(|| async { s3_client(config) })
            .await
            .clone()
    }
}

/// An S3 client for `sdk`; path-style addressing when an endpoint is
/// configured.
#[cfg(feature = "s3")]
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    if sdk.endpoint_url().is_some() {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// AWS SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL`), with [`sdk_timeouts`]. A process reads it through
/// its [`Aws`], once.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .load()
        .await
}
/// Every SDK call has an end: without these, a call to an endpoint that
/// accepts the connection and never answers waits until the Lambda's own
/// timeout kills the invocation (and the request stays `processing`). One
/// attempt may take `ATTEMPT`; all attempts (the SDK retries throttling and
/// timeouts) `OPERATION`, well inside the shortest function timeout that
/// makes several calls (the websocket and enqueue functions' 10 s are
/// spent on 2-4 calls, each normally under 50 ms).
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(SDK_CONNECT_TIMEOUT)
        .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
        .operation_timeout(SDK_OPERATION_TIMEOUT)
        .build()
}

pub const SDK_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
pub const SDK_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
pub const SDK_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sdk_call_has_an_attempt_and_an_operation_timeout() {
        let config = aws_config().await;
        let timeouts = config.timeout_config().expect("a timeout config");
        assert_eq!(timeouts.connect_timeout(), Some(SDK_CONNECT_TIMEOUT));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(SDK_ATTEMPT_TIMEOUT)
        );
        assert_eq!(timeouts.operation_timeout(), Some(SDK_OPERATION_TIMEOUT));
    }
}
