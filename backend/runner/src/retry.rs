//! The retry policy shared by every flow: what to do after a classified failure.
//!
//! Connectors *classify* a failure (transient, throttled, permanent, authentication); this
//! module holds the one *policy* that turns that class into a decision. Delays use
//! exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
//! Jitter"): `random(0, min(max_delay, base * 2^n))`, which spreads a burst of failed
//! workers over the whole window instead of having them retry in lockstep.
//!
//! `rand` is used directly rather than `backon`: backon's jitter adds a random amount on top
//! of the exponential delay, which is not full jitter, and a decision function is clearer
//! than an iterator of delays when the partner's `Retry-After` must override the schedule.

use std::time::Duration;

use rand::Rng;

/// A failure as classified by a connector or flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Network error, timeout, 5xx: worth trying again.
    Transient,
    /// The partner asked us to slow down (429, Shopify `THROTTLED`).
    Throttled {
        /// The partner's `Retry-After`, if it gave one; we never retry sooner.
        retry_after: Option<Duration>,
    },
    /// Validation or mapping error: retrying cannot help.
    Permanent(String),
    /// The partner refused our credentials: the pair must be paused until someone fixes them.
    Auth(String),
}

/// What the worker does next with a failed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Give up: move the event to the dead letters with this reason.
    DeadLetter(String),
    /// Pause the integration pair with this reason (the event is held, not lost).
    PausePair(String),
}

/// Exponential backoff with full jitter, capped, then dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The cap of the first retry's delay; doubles with every further attempt.
    pub base: Duration,
    /// No computed delay exceeds this (a partner's `Retry-After` may).
    pub max_delay: Duration,
    /// Total attempts, the first included; after this many failures the event is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// One second doubling up to five minutes, eight attempts: about ten minutes of retries,
    /// long enough to ride out a partner's short outage.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the jittered delay after `attempts_made` failed attempts (≥ 1):
    /// `min(max_delay, base * 2^(attempts_made - 1))`.
    pub fn cap(&self, attempts_made: u32) -> Duration {
        let exponent = attempts_made.saturating_sub(1);
        // Saturate rather than overflow: past 2^31 the cap is max_delay anyway.
        let factor = 1u32.checked_shl(exponent).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// A full-jitter delay, uniform in `[0, cap(attempts_made)]`.
    pub fn jittered_delay<R: Rng + ?Sized>(&self, attempts_made: u32, rng: &mut R) -> Duration {
        let cap = u64::try_from(self.cap(attempts_made).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=cap))
    }

    /// Decides what to do after the `attempts_made`-th attempt (1 for the first) failed.
    pub fn decide(&self, attempts_made: u32, failure: &Failure) -> Decision {
        self.decide_with(attempts_made, failure, &mut rand::rng())
    }

    /// [`RetryPolicy::decide`] with a caller-chosen random source (seeded in tests).
    pub fn decide_with<R: Rng + ?Sized>(
        &self,
        attempts_made: u32,
        failure: &Failure,
        rng: &mut R,
    ) -> Decision {
        let retry_after = match failure {
            Failure::Permanent(reason) => return Decision::DeadLetter(reason.clone()),
            Failure::Auth(reason) => return Decision::PausePair(reason.clone()),
            Failure::Transient => None,
            Failure::Throttled { retry_after } => *retry_after,
        };
        if attempts_made >= self.max_attempts {
            let what = match failure {
                Failure::Throttled { .. } => "still throttled by the partner",
                _ => "transient failures",
            };
            return Decision::DeadLetter(format!(
                "gave up after {attempts_made} attempts ({what}); retries exhausted"
            ));
        }
        let delay = self.jittered_delay(attempts_made, rng);
        Decision::RetryAfter(retry_after.map_or(delay, |wait| delay.max(wait)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: 6,
        }
    }

    fn retry_delay(decision: Decision) -> Duration {
        match decision {
            Decision::RetryAfter(delay) => delay,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn cap_doubles_then_stops_at_max_delay() {
        let p = policy();
        assert_eq!(p.cap(1), Duration::from_millis(100));
        assert_eq!(p.cap(2), Duration::from_millis(200));
        assert_eq!(p.cap(4), Duration::from_millis(800));
        assert_eq!(p.cap(7), Duration::from_secs(5));
        assert_eq!(p.cap(u32::MAX), Duration::from_secs(5));
        // attempt 0 is treated like the first failure rather than underflowing.
        assert_eq!(p.cap(0), Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_stays_in_bounds_with_mean_near_half_the_cap() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in [1, 3, 6] {
            let cap = p.cap(attempt);
            let samples = 10_000u32;
            let mut total = Duration::ZERO;
            for _ in 0..samples {
                let delay = p.jittered_delay(attempt, &mut rng);
                assert!(delay <= cap, "{delay:?} above cap {cap:?}");
                total += delay;
            }
            let mean = total / samples;
            let half = cap / 2;
            // The mean of 10,000 uniform samples is within a few percent of cap/2.
            assert!(
                mean > half.mul_f64(0.95) && mean < half.mul_f64(1.05),
                "mean {mean:?}, cap {cap:?}"
            );
        }
    }

    #[test]
    fn jitter_actually_varies() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let a = p.jittered_delay(5, &mut rng);
        let b = p.jittered_delay(5, &mut rng);
        assert_ne!(a, b);
    }

    #[test]
    fn transient_failures_retry_until_attempts_run_out() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(3);
        for attempt in 1..p.max_attempts {
            let delay = retry_delay(p.decide_with(attempt, &Failure::Transient, &mut rng));
            assert!(delay <= p.cap(attempt));
        }
        match p.decide_with(p.max_attempts, &Failure::Transient, &mut rng) {
            Decision::DeadLetter(reason) => {
                assert!(reason.contains("6 attempts"), "{reason}");
                assert!(reason.contains("exhausted"), "{reason}");
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[test]
    fn retry_after_is_never_undercut_but_jitter_may_exceed_it() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(11);
        let wait = Duration::from_secs(30);
        for _ in 0..1_000 {
            let failure = Failure::Throttled {
                retry_after: Some(wait),
            };
            // Above max_delay on purpose: the partner's word wins over our cap.
            assert_eq!(retry_delay(p.decide_with(2, &failure, &mut rng)), wait);
        }
        let short = Duration::from_millis(50);
        let mut above = 0;
        for _ in 0..1_000 {
            let failure = Failure::Throttled {
                retry_after: Some(short),
            };
            let delay = retry_delay(p.decide_with(5, &failure, &mut rng));
            assert!(delay >= short && delay <= p.cap(5));
            if delay > short {
                above += 1;
            }
        }
        assert!(
            above > 900,
            "jitter should usually exceed a short Retry-After"
        );
    }

    #[test]
    fn throttled_without_retry_after_backs_off_and_eventually_dead_letters() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(5);
        let failure = Failure::Throttled { retry_after: None };
        assert!(retry_delay(p.decide_with(1, &failure, &mut rng)) <= p.cap(1));
        assert!(matches!(
            p.decide_with(6, &failure, &mut rng),
            Decision::DeadLetter(reason) if reason.contains("throttled")
        ));
    }

    #[test]
    fn permanent_and_auth_failures_never_retry() {
        let p = policy();
        assert_eq!(
            p.decide(1, &Failure::Permanent("unknown SKU ABC-1".into())),
            Decision::DeadLetter("unknown SKU ABC-1".into())
        );
        assert_eq!(
            p.decide(1, &Failure::Auth("D365 refused the client secret".into())),
            Decision::PausePair("D365 refused the client secret".into())
        );
    }

    #[test]
    fn default_policy_is_sane() {
        let p = RetryPolicy::default();
        assert!(p.base <= p.max_delay);
        assert!(p.max_attempts > 1);
    }
}
