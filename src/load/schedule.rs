//! Arrival schedules: the *intended* send instants of an open-loop run, as offsets from
//! its start.
//!
//! A schedule composes two independent choices instead of one type per combination:
//! - a [`Profile`], the target rate over time (constant, linear ramp, steps), and
//! - [`Arrivals`], how requests are spread around that rate (evenly, Poisson, or gamma
//!   with a burstiness factor).
//!
//! Arrivals are generated on a unit-rate axis (position `s`: evenly `0, 1, 2, ...`, or
//! the running sum of random gaps of mean 1), then mapped to time through the inverse
//! of the profile's cumulative rate, `t = Λ⁻¹(s)`. That is the textbook time-change
//! construction of a non-homogeneous process, and it makes every instant a function of
//! its index (`start + f(i)`): nothing is accumulated from sleeps, so a late wake-up
//! never shifts the requests after it.

use std::time::Duration;

use crate::rng::Rng;

/// The target request rate over time.
#[derive(Clone, Debug, PartialEq)]
pub enum Profile {
    /// `rate` requests per second, for as long as the schedule's bounds allow.
    Constant {
        /// Requests per second, > 0.
        rate: f64,
    },
    /// Rate changing linearly from `from` to `to` over `over`, then ending.
    Ramp {
        /// Rate at the start, >= 0.
        from: f64,
        /// Rate at the end, >= 0.
        to: f64,
        /// Length of the ramp, > 0.
        over: Duration,
    },
    /// Constant rates one after the other, then ending.
    Steps(Vec<Step>),
}

/// One stage of [`Profile::Steps`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Requests per second during the step, >= 0 (0 is a pause).
    pub rate: f64,
    /// How long the step lasts.
    pub duration: Duration,
}

/// How requests are spread around the profile's rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// Evenly spaced: at rate r, request i is due at i/r (the first at 0).
    Uniform,
    /// A Poisson process: exponential gaps, reproducible from `seed`.
    Poisson {
        /// PRNG seed.
        seed: u64,
    },
    /// Gamma-distributed gaps with shape `burstiness` and the profile's mean: 1 is
    /// Poisson, below 1 is burstier (clustered requests, longer silences), above 1 is
    /// more regular. Same convention as vLLM's `benchmark_serving --burstiness`.
    Gamma {
        /// Shape of the gap distribution, > 0.
        burstiness: f64,
        /// PRNG seed.
        seed: u64,
    },
}

/// A schedule description: a profile, an arrival process, and bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// Target rate over time.
    pub profile: Profile,
    /// Spreading of requests around the rate.
    pub arrivals: Arrivals,
    /// No instant at or after this offset.
    pub duration: Option<Duration>,
    /// At most this many instants.
    pub requests: Option<u64>,
}

/// A schedule that cannot be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// A rate that is negative, not finite, or zero where it must be positive.
    #[error("invalid rate {0}: rates must be finite and positive (steps may pause at 0)")]
    Rate(f64),
    /// A burstiness that is not a finite positive number.
    #[error("invalid burstiness {0}: it must be finite and > 0 (1 = Poisson)")]
    Burstiness(f64),
    /// A ramp or step list of zero length, or a step list with no requests at all.
    #[error("the profile is empty: it has no time or no requests")]
    Empty,
    /// A constant profile with neither a duration nor a request count never ends.
    #[error("a constant-rate schedule needs a duration or a request count")]
    Unbounded,
}

impl ScheduleSpec {
    /// Evenly spaced requests at `rate` per second.
    pub fn constant(rate: f64) -> Self {
        ScheduleSpec {
            profile: Profile::Constant { rate },
            arrivals: Arrivals::Uniform,
            duration: None,
            requests: None,
        }
    }

    /// The same spec with a duration bound.
    pub fn for_duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// The same spec with a request-count bound.
    pub fn for_requests(mut self, n: u64) -> Self {
        self.requests = Some(n);
        self
    }

    /// The same spec with another arrival process.
    pub fn with_arrivals(mut self, a: Arrivals) -> Self {
        self.arrivals = a;
        self
    }

    /// Validates the spec and returns the iterator of intended instants.
    pub fn build(&self) -> Result<Schedule, ScheduleError> {
        let rate_ok = |r: f64, positive: bool| r.is_finite() && (r > 0.0 || (!positive && r == 0.0));
        let map = match &self.profile {
            Profile::Constant { rate } => {
                if !rate_ok(*rate, true) {
                    return Err(ScheduleError::Rate(*rate));
                }
                if self.duration.is_none() && self.requests.is_none() {
                    return Err(ScheduleError::Unbounded);
                }
                TimeMap::Constant { rate: *rate }
            }
            Profile::Ramp { from, to, over } => {
                for r in [*from, *to] {
                    if !rate_ok(r, false) {
                        return Err(ScheduleError::Rate(r));
                    }
                }
                let d = over.as_secs_f64();
                let total = (from + to) / 2.0 * d;
                if d <= 0.0 || total <= 0.0 {
                    return Err(ScheduleError::Empty);
                }
                TimeMap::Ramp {
                    from: *from,
                    k: (to - from) / (2.0 * d),
                    total,
                }
            }
            Profile::Steps(steps) => {
                let mut table = Vec::with_capacity(steps.len());
                let (mut s0, mut t0) = (0.0, 0.0);
                for st in steps {
                    if !rate_ok(st.rate, false) {
                        return Err(ScheduleError::Rate(st.rate));
                    }
                    let d = st.duration.as_secs_f64();
                    let s1 = s0 + st.rate * d;
                    if st.rate > 0.0 && d > 0.0 {
                        table.push(Segment {
                            s0,
                            s1,
                            t0,
                            rate: st.rate,
                        });
                    }
                    s0 = s1;
                    t0 += d;
                }
                if table.is_empty() {
                    return Err(ScheduleError::Empty);
                }
                TimeMap::Steps(table)
            }
        };
        let gaps = match self.arrivals {
            Arrivals::Uniform => Gaps::Uniform,
            Arrivals::Poisson { seed } => Gaps::Gamma {
                shape: 1.0,
                rng: Rng::new(seed),
            },
            Arrivals::Gamma { burstiness, seed } => {
                if !(burstiness.is_finite() && burstiness > 0.0) {
                    return Err(ScheduleError::Burstiness(burstiness));
                }
                Gaps::Gamma {
                    shape: burstiness,
                    rng: Rng::new(seed),
                }
            }
        };
        Ok(Schedule {
            map,
            gaps,
            index: 0,
            position: 0.0,
            end: self.duration,
            limit: self.requests,
        })
    }
}

/// One constant-rate segment of a step profile, on both axes.
#[derive(Clone, Debug)]
struct Segment {
    s0: f64,
    s1: f64,
    t0: f64,
    rate: f64,
}

/// The inverse cumulative rate, `Λ⁻¹`: unit-rate position to seconds.
#[derive(Clone, Debug)]
enum TimeMap {
    Constant { rate: f64 },
    Ramp { from: f64, k: f64, total: f64 },
    Steps(Vec<Segment>),
}

impl TimeMap {
    /// Seconds at which the cumulative expected count reaches `s`, or `None` past the
    /// profile's end.
    fn time_at(&self, s: f64) -> Option<f64> {
        match self {
            TimeMap::Constant { rate } => Some(s / rate),
            TimeMap::Ramp { from, k, total } => {
                if s >= *total {
                    return None;
                }
                if s == 0.0 {
                    return Some(0.0);
                }
                // Root of k t² + from t - s = 0, written so that it is stable when k
                // is 0 (a flat ramp) and when `from` is 0.
                let disc = (from * from + 4.0 * k * s).max(0.0);
                Some(2.0 * s / (from + disc.sqrt()))
            }
            TimeMap::Steps(table) => {
                // Few steps: a linear scan from the front is cheaper than bookkeeping.
                let seg = table.iter().find(|g| s < g.s1)?;
                Some(seg.t0 + (s - seg.s0).max(0.0) / seg.rate)
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Gaps {
    Uniform,
    /// Gaps of mean 1: Gamma(shape, 1/shape).
    Gamma {
        shape: f64,
        rng: Rng,
    },
}

/// Iterator of intended send offsets from the run's start, in order.
#[derive(Clone, Debug)]
pub struct Schedule {
    map: TimeMap,
    gaps: Gaps,
    index: u64,
    position: f64,
    end: Option<Duration>,
    limit: Option<u64>,
}

impl Schedule {
    /// How many instants have been yielded so far.
    pub fn yielded(&self) -> u64 {
        self.index
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.limit.is_some_and(|n| self.index >= n) {
            return None;
        }
        let s = match &mut self.gaps {
            // Evenly spaced positions are the index itself: no floating-point sum.
            Gaps::Uniform => self.index as f64,
            Gaps::Gamma { shape, rng } => {
                let k = *shape;
                self.position += if k == 1.0 { rng.exp1() } else { rng.gamma(k) / k };
                self.position
            }
        };
        let t = self.map.time_at(s)?;
        // An instant too far to represent is never reached: the schedule ends there.
        let at = Duration::try_from_secs_f64(t).ok()?;
        if self.end.is_some_and(|end| at >= end) {
            // Make the end sticky for random arrivals too.
            self.limit = Some(self.index);
            return None;
        }
        self.index += 1;
        Some(at)
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
