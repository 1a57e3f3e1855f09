//! The Management API notifier, on the wire.

use people_testkit::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_notifier_posts_on_the_wire() {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    use people_app::ports::Notifier;
    use people_aws::apigw::ManagementApiNotifier;
    let endpoint = tokio::task::block_in_place(moto::endpoint);
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(config);
    let notifier = ManagementApiNotifier::new(client.clone());
    notifier
        .post(
            "conn-1",
            br#"{"type":"process-status","id":"r","status":"processing"}"#,
        )
        .await
        .unwrap();
    // moto accepts any connection id and does not show what it was sent,
    // and its GetConnection answers epoch numbers where API Gateway answers
    // ISO timestamps; the local server's tests (local/tests/local/websocket.rs)
    // cover delivery, 410 and 413 through this same adapter.
    client
        .delete_connection()
        .connection_id("conn-1")
        .send()
        .await
        .unwrap();
}
