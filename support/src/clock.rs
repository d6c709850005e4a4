//! One clock for the whole simulated node, with a time scale.
//!
//! Every simulated duration (download, deploy, mining progress, callback cadence, TTLs,
//! the 60 s proxy timeout) is expressed in *simulated* seconds and runs `scale`× faster
//! than wall time; every reported figure (`elapsed_seconds`, `nonces_per_second`,
//! `start_time`) stays in simulated seconds. Tests run with a large scale so a "30 s
//! warm-up" takes milliseconds. The validator uses the same type for its own waits.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A scaled clock. Cheap to copy; all copies agree.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    unix_origin: f64,
    scale: f64,
}

impl SimClock {
    /// `scale` must be finite and > 0; anything else is treated as 1.
    pub fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        SimClock {
            origin: Instant::now(),
            unix_origin: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            scale,
        }
    }

    /// Real time.
    pub fn real() -> Self {
        Self::new(1.0)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Simulated seconds since the clock was made.
    pub fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * self.scale
    }

    /// Simulated unix time (seconds).
    pub fn unix(&self) -> f64 {
        self.unix_origin + self.now()
    }

    /// Wall-clock duration of `sim_secs` simulated seconds.
    pub fn real_duration(&self, sim_secs: f64) -> Duration {
        Duration::from_secs_f64((sim_secs.max(0.0) / self.scale).min(1e9))
    }

    /// Sleep for `sim_secs` simulated seconds. Zero returns at once: a zero-length tokio
    /// timer still waits for the next 1 ms timer tick.
    pub async fn sleep(&self, sim_secs: f64) {
        let d = self.real_duration(sim_secs);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// A wall-clock timeout for a network call that is `sim_secs` long in simulated
    /// time. Scaled, but never below a floor (the smaller of `sim_secs` and 10 s), so a
    /// loaded CI machine does not turn an accelerated run into spurious timeouts.
    pub fn network_timeout(&self, sim_secs: f64) -> Duration {
        let scaled = sim_secs / self.scale;
        Duration::from_secs_f64(scaled.max(sim_secs.min(10.0)).max(0.001))
    }

    /// How often background work ticks: one simulated second, but at most 200 Hz real.
    pub fn tick(&self) -> Duration {
        Duration::from_secs_f64((1.0 / self.scale).max(0.005))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scaled_sleep_is_fast_and_reports_sim_seconds() {
        let c = SimClock::new(1000.0);
        let t0 = Instant::now();
        c.sleep(30.0).await;
        let real = t0.elapsed();
        assert!(real < Duration::from_secs(2), "30 sim s took {real:?}");
        assert!(c.now() >= 30.0);
    }

    #[test]
    fn bad_scale_is_one() {
        assert_eq!(SimClock::new(0.0).scale(), 1.0);
        assert_eq!(SimClock::new(f64::NAN).scale(), 1.0);
        assert_eq!(SimClock::new(-3.0).scale(), 1.0);
    }

    #[test]
    fn network_timeout_has_a_floor() {
        let c = SimClock::new(1000.0);
        assert_eq!(c.network_timeout(900.0), Duration::from_secs(10));
        assert_eq!(c.network_timeout(2.0), Duration::from_secs(2));
        assert_eq!(
            SimClock::new(1.0).network_timeout(60.0),
            Duration::from_secs(60)
        );
    }
}
