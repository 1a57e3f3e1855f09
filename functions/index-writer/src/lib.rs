//! The index-writer Lambda, run by an EventBridge schedule: catches its
//! index up with the people table's feed and writes a new index image to
//! the bucket when one is due (`people_aws::image_writer`). A failed run fails
//! the invocation; the next scheduled run tries again, and until then the
//! functions start from the previous image.

use lambda_runtime::{Error, LambdaEvent};
use people_aws::image_writer::{ImageWriter, Run};
use serde_json::{Value, json};

/// Handles one scheduled event (its content is not needed); answers what
/// the run did.
pub async fn handler(writer: &ImageWriter, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    // Boxed: deep enough to pass the layout recursion limit otherwise.
    Ok(match Box::pin(writer.run()).await? {
        Run::Wrote {
            image,
            people,
            changes,
        } => json!({
            "written": image.key,
            "bytes": image.size,
            "people": people,
            "changes": changes,
        }),
        Run::NotDue { changes, age } => json!({
            "written": null,
            "changes": changes,
            "image_age_s": age.as_secs(),
        }),
    })
}
