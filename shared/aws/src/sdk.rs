//! The AWS SDK configuration every client of a process is built from.

/// AWS SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL`), loaded once at start-up.
pub async fn aws_config() -> aws_config::SdkConfig {
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
