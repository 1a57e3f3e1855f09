//! Index-writer Lambda: writes index images for the other functions' cold
//! starts.

use lambda_runtime::Error;
use metrics_cloudwatch_embedded::lambda::handler::run;
use people_app::config::PeopleConfig;
use people_aws::image_writer::{ImageWriter, WritePolicy};
use people_aws::s3::S3ImageStore;
use people_aws::sdk::Aws;
use people_aws::wiring::open_people_store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("index-writer")?;
    let config = PeopleConfig::from_env()?;
    let policy = WritePolicy::from_lookup(|k| std::env::var(k).ok())?;
    let bucket = config
        .index_bucket
        .clone()
        .ok_or("INDEX_BUCKET names the bucket this function writes")?;
    let aws = Aws::from_env();
    let images = S3ImageStore::new(aws.s3().await, bucket);
    let writer = Box::pin(ImageWriter::open(
        open_people_store(&aws, &config).await,
        images,
        &config,
        policy,
    ))
    .await?;
    run(metrics, |event| index_writer::handler(&writer, event)).await
}
