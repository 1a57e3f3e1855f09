//! EventBridge schedules, emulated for the front mode: each `Schedule`
//! event of template.yaml (`rate(5 minutes)`) invokes its function through
//! the Lambda invoke API at that rate, with the event EventBridge sends a
//! scheduled rule's target (`events/scheduled.json` is its fixture, and
//! `local/tests/local/fixtures.rs` holds the two to the same shape). As on AWS,
//! the first invocation comes one period after the start, and a run that
//! fails is logged; the next period runs again.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::invoke::Invoker;

/// The account id the emulated events carry (moto's default).
pub const ACCOUNT: &str = "123456789012";

/// One schedule to run: `function` (as the invoke API names it) every
/// `every`, as the rule `rule` of the template's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub function: String,
    pub rule: String,
    pub every: Duration,
}

/// The event a scheduled EventBridge rule sends its target at `time`.
pub fn scheduled_event(rule: &str, region: &str, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{ACCOUNT}:rule/{rule}")],
        "detail": {}
    })
}

/// Starts one task per schedule; each invokes its function every period
/// until the process ends.
pub fn spawn_schedules(
    invoker: Invoker,
    schedules: Vec<Scheduled>,
    region: String,
) -> Vec<tokio::task::JoinHandle<()>> {
    schedules
        .into_iter()
        .map(|s| {
            let invoker = invoker.clone();
            let region = region.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(
                    tokio::time::Instant::now() + s.every,
                    s.every,
                );
                // A run longer than the period delays the next; none piles up.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let event = scheduled_event(&s.rule, &region, Utc::now());
                    match invoker.invoke(&s.function, &event).await {
                        Ok(answer) => {
                            tracing::info!(function = %s.function, rule = %s.rule, %answer, "scheduled run")
                        }
                        Err(e) => {
                            tracing::warn!(function = %s.function, rule = %s.rule, error = %e, "scheduled run failed")
                        }
                    }
                }
            })
        })
        .collect()
}
