//! Start-up of a Lambda function's telemetry (feature `lambda`).

use metrics_cloudwatch_embedded::Collector;

/// CloudWatch namespace of every metric of the service.
pub const NAMESPACE: &str = "PeopleDirectory";

/// Installs the Embedded Metric Format recorder: every metric of
/// [`people_app::telemetry`] is written as one JSON document per invocation to
/// the function's log, where CloudWatch turns it into metrics with the
/// dimension `function`; the first invocation also counts a cold start,
/// and each document carries the invocation's request id. Run the handler
/// with `metrics_cloudwatch_embedded::lambda::handler::run` (or `run_http`)
/// so that the document is flushed after each invocation.
pub fn init_metrics(function: &'static str) -> Result<&'static Collector, String> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("function", function)
        .lambda_cold_start_metric(people_app::telemetry::COLD_START)
        .with_lambda_request_id("request_id")
        .init()
        .map_err(|e| format!("installing the metrics recorder failed: {e}"))?;
    people_app::telemetry::describe();
    Ok(collector)
}
#[cfg(test)]
mod tests {
    /// template.yaml's PeopleTableSizeAlarm watches the metric this code
    /// emits, in the namespace the Lambdas write to.
    #[test]
    fn the_table_size_alarm_watches_the_index_size_metric() {
        let template = include_str!("../../../template.yaml");
        let alarm = template
            .split("  PeopleTableSizeAlarm:")
            .nth(1)
            .expect("template.yaml has PeopleTableSizeAlarm");
        let alarm = alarm.split("\n  # ").next().unwrap_or(alarm);
        assert!(
            alarm.contains(&format!(
                "MetricName: {}",
                people_app::telemetry::INDEX_PEOPLE
            )),
            "{alarm}"
        );
        assert!(alarm.contains("Value: query-api"), "{alarm}");
        assert!(
            alarm.contains(&format!("Namespace: {}", super::NAMESPACE)),
            "{alarm}"
        );
    }
}
