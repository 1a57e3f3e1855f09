//! The WebSocket Lambda: every route of the WebSocket API (`$connect`,
//! `$disconnect`, `$default`, `subscribe`, `process`) comes here and is
//! handled by `shared::ws::handle`, the code the local server runs too.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};
use shared::ws::WsApi;

pub async fn handler(
    api: &WsApi,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(shared::ws::handle(api, event.payload).await)
}
