//! Authorizer Lambda: the WebSocket API's `$connect` behind the issuer's JWTs.

use authorizer::{Config, Verifier};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let verifier = Verifier::new(&config)?;
    // During init: the TLS handshake and the key fetch are not paid by the
    // first connection. A failure here is logged and retried on use.
    verifier.prefetch().await;
    run(service_fn(|event| authorizer::handler(&verifier, event))).await
}
