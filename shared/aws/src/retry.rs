//! The adapters' own retry policy, for what the SDK's retries cannot see:
//! items DynamoDB accepted a BatchWriteItem for but handed back
//! unprocessed, and transactions cancelled by a conflict. (A throttled or
//! failed *request* is the SDK's to retry, in its standard mode.)

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How often and how patiently the adapter retries: exponential backoff,
/// capped, with "equal jitter" (each sleep half fixed, half random) so
/// that the calls that failed together do not come back together, yet each
/// one still backs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each following one.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The policy with at least one attempt.
    pub(crate) fn at_least_once(self) -> Self {
        Self {
            max_attempts: self.max_attempts.max(1),
            ..self
        }
    }

    /// The sleeps before each retry, `max_attempts - 1` of them: retry `n`
    /// (1-based) sleeps between half and all of
    /// `min(first_delay × 2^(n-1), max_delay)`. backon's jitter adds up to
    /// 100% of the delay, so the base is half of it.
    pub(crate) fn delays(&self) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(self.first_delay / 2)
            .with_max_delay(self.max_delay / 2)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_within_bounds() {
        let policy = RetryPolicy {
            max_attempts: 31,
            ..RetryPolicy::default()
        };
        for _ in 0..20 {
            let delays: Vec<Duration> = policy.delays().collect();
            assert_eq!(delays.len(), 30);
            for (retry_no, full) in [(1, 25), (2, 50), (3, 100), (6, 800), (7, 1000), (30, 1000)] {
                let full = Duration::from_millis(full);
                let d = delays[retry_no - 1];
                assert!(d >= full / 2 && d <= full, "retry {retry_no}: {d:?}");
            }
        }
    }

    #[test]
    fn the_policy_is_bounded() {
        assert_eq!(RetryPolicy::default().delays().count(), 7);
        let once = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        }
        .at_least_once();
        assert_eq!(once.max_attempts, 1);
        assert_eq!(once.delays().count(), 0);
    }
}
