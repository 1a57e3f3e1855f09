//! The jobs queues' settings, read from template.yaml: the queue of the
//! SQS event source mapping, its visibility timeout and redrive policy,
//! and its dead-letter queue's retention.

use std::time::Duration;

use anyhow::Context;
use people_app::jobs::wire::DLQ_RETENTION;
use people_aws::sqs::QueueSettings;
use people_aws::template::Template;

/// The settings of the event source mapping's queue in `template`;
/// `visibility_timeout` (seconds) overrides the template's.
pub(crate) fn settings_from_template(
    template: &Template,
    visibility_timeout: Option<u64>,
) -> anyhow::Result<QueueSettings> {
    let source = template.sqs_event_source()?;
    let queue = template
        .queue(&source.queue)
        .with_context(|| format!("the event source's queue {}", source.queue))?;
    let (dlq, max_receive_count) = queue
        .redrive
        .clone()
        .with_context(|| format!("{} has no RedrivePolicy", queue.logical_id))?;
    let dlq = template.queue(&dlq)?;
    Ok(QueueSettings {
        visibility_timeout: match visibility_timeout {
            Some(secs) => Duration::from_secs(secs),
            // SQS's default when the template sets none.
            None => queue.visibility_timeout.unwrap_or(Duration::from_secs(30)),
        },
        max_receive_count,
        dlq_retention: dlq.retention.unwrap_or(DLQ_RETENTION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_are_the_templates() {
        let settings = settings_from_template(&Template::built_in(), None).unwrap();
        assert_eq!(settings.visibility_timeout, Duration::from_secs(360));
        assert_eq!(settings.max_receive_count, 3);
        assert_eq!(settings.dlq_retention, Duration::from_secs(1_209_600));
        // The constants the rest of the code uses agree with the template.
        assert_eq!(settings, QueueSettings::default());
        let short = settings_from_template(&Template::built_in(), Some(2)).unwrap();
        assert_eq!(short.visibility_timeout, Duration::from_secs(2));
    }
}
