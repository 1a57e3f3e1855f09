//! A client of the Lambda invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! the one `cargo lambda watch` serves on 127.0.0.1:9000 and
//! `sam local start-lambda` on 127.0.0.1:3001. The local server's front
//! mode and the SQS event source emulation invoke the functions through it.

use std::time::Duration;

use serde_json::Value;

/// How each function is named at the invoke API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FunctionNames {
    /// By binary, `query-api` (`cargo lambda watch`).
    Binary,
    /// By the template's logical id, `QueryApiFunction` (`sam local start-lambda`).
    LogicalId,
}

impl FunctionNames {
    pub fn of<'a>(&self, function: &'a people_aws::template::FunctionRef) -> &'a str {
        match self {
            FunctionNames::Binary => &function.binary,
            FunctionNames::LogicalId => &function.logical_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The invoke API could not be reached or did not answer in time.
    #[error("invoking {function} at {url} failed: {source}")]
    Unreachable {
        function: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The invoke API refused the call (no such function, ...).
    #[error("invoking {function}: the invoke API answered {status}: {body}")]
    Refused {
        function: String,
        status: u16,
        body: String,
    },
    /// The function ran and failed (`X-Amz-Function-Error`), or answered
    /// something that is not JSON.
    #[error("function {function} failed: {body}")]
    Function { function: String, body: String },
}

/// The invoke API at one address.
#[derive(Clone)]
pub struct Invoker {
    client: reqwest::Client,
    base: String,
}

impl Invoker {
    /// `base` such as `http://127.0.0.1:9000`; `timeout` bounds one
    /// invocation (the longest function timeout of the template is 60 s).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Invokes `function` synchronously (`RequestResponse`) with `payload`;
    /// its JSON answer.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let unreachable = |source| InvokeError::Unreachable {
            function: function.to_owned(),
            url: url.clone(),
            source,
        };
        let response = self
            .client
            .post(&url)
            .header("x-amz-invocation-type", "RequestResponse")
            .json(payload)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(InvokeError::Refused {
                function: function.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        if function_error {
            return Err(InvokeError::Function {
                function: function.to_owned(),
                body,
            });
        }
        serde_json::from_str(&body).map_err(|_| InvokeError::Function {
            function: function.to_owned(),
            body,
        })
    }
}
