//! The WebSocket Lambda: every route of the WebSocket API (`$connect`,
//! `$disconnect`, `$default`, `subscribe`, `process`) comes here and is
//! handled by `people_app::ws::handle` through people-http's API Gateway
//! translation (`people_http::ws::handle`), the code the local server runs
//! too.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};
use people_app::ws::WsApi;

pub async fn handler(
    api: &WsApi,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(people_http::ws::handle(api, event.payload).await)
}
