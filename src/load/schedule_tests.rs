//! Schedules: exact instants for deterministic profiles, determinism and statistics
//! for random arrivals, and the errors of unusable specs.

use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn all(spec: &ScheduleSpec) -> Vec<Duration> {
    spec.build().expect("valid spec").collect()
}

#[test]
fn constant_rate_is_exact_and_bounded_by_duration() {
    let got = all(&ScheduleSpec::constant(4.0).for_duration(Duration::from_secs(1)));
    assert_eq!(got, vec![ms(0), ms(250), ms(500), ms(750)]);
    // 1000 req/s for 2.5 s: 2500 instants, i-th at i ms exactly.
    let got = all(&ScheduleSpec::constant(1000.0).for_duration(ms(2500)));
    assert_eq!(got.len(), 2500);
    for (i, t) in got.iter().enumerate() {
        assert_eq!(*t, ms(i as u64));
    }
}

#[test]
fn constant_rate_is_bounded_by_count_and_by_whichever_comes_first() {
    let got = all(&ScheduleSpec::constant(10.0).for_requests(5));
    assert_eq!(got, vec![ms(0), ms(100), ms(200), ms(300), ms(400)]);
    assert_eq!(
        all(&ScheduleSpec::constant(10.0).for_requests(5).for_duration(ms(250))).len(),
        3
    );
    assert_eq!(
        all(&ScheduleSpec::constant(10.0).for_requests(5).for_duration(ms(5000))).len(),
        5
    );
}

#[test]
fn instants_do_not_drift_at_high_rates() {
    // 25k req/s for 200 s: the last instant is exactly i/rate, not a sum of 5M gaps.
    let s = ScheduleSpec::constant(25_000.0)
        .for_requests(5_000_000)
        .build()
        .expect("valid");
    let last = s.last().expect("non-empty");
    assert_eq!(last, Duration::from_nanos(4_999_999 * 40_000));
}

#[test]
fn linear_ramp_instants_are_exact() {
    // From 0 to 10 req/s over 1 s: Λ(t) = 5t², so the i-th instant is sqrt(i/5).
    let spec = ScheduleSpec {
        profile: Profile::Ramp {
            from: 0.0,
            to: 10.0,
            over: Duration::from_secs(1),
        },
        ..ScheduleSpec::constant(1.0)
    };
    let got = all(&spec);
    assert_eq!(got.len(), 5);
    for (i, t) in got.iter().enumerate() {
        let want = (i as f64 / 5.0).sqrt();
        assert!((t.as_secs_f64() - want).abs() < 1e-9, "instant {i}: {t:?} vs {want}");
    }
    // A ramp from 100 to 300 req/s over 10 s carries (100 + 300) / 2 * 10 requests.
    let spec = ScheduleSpec {
        profile: Profile::Ramp {
            from: 100.0,
            to: 300.0,
            over: Duration::from_secs(10),
        },
        ..ScheduleSpec::constant(1.0)
    };
    let got = all(&spec);
    assert_eq!(got.len(), 2000);
    // Gaps shrink as the rate rises: 1/100 s at the start, 1/300 s at the end.
    let first_gap = (got[1] - got[0]).as_secs_f64();
    let last_gap = (got[1999] - got[1998]).as_secs_f64();
    assert!((first_gap - 0.01).abs() < 1e-4, "{first_gap}");
    assert!((last_gap - 1.0 / 300.0).abs() < 1e-4, "{last_gap}");
    // A falling ramp is the mirror image.
    let down = ScheduleSpec {
        profile: Profile::Ramp {
            from: 10.0,
            to: 0.0,
            over: Duration::from_secs(1),
        },
        ..ScheduleSpec::constant(1.0)
    };
    assert_eq!(all(&down).len(), 5);
}

#[test]
fn steps_are_exact_and_pauses_are_skipped() {
    let spec = ScheduleSpec {
        profile: Profile::Steps(vec![
            Step {
                rate: 10.0,
                duration: ms(500),
            },
            Step {
                rate: 0.0,
                duration: ms(1000),
            },
            Step {
                rate: 4.0,
                duration: ms(1000),
            },
        ]),
        ..ScheduleSpec::constant(1.0)
    };
    let got = all(&spec);
    let want: Vec<Duration> = (0..5)
        .map(|i| ms(100 * i))
        .chain((0..4).map(|i| ms(1500 + 250 * i)))
        .collect();
    assert_eq!(got, want);
    // A duration bound cuts a step profile short.
    assert_eq!(
        all(&ScheduleSpec {
            duration: Some(ms(1600)),
            ..spec
        })
        .len(),
        6
    );
}

#[test]
fn random_arrivals_are_deterministic_for_a_seed() {
    for arrivals in [
        Arrivals::Poisson { seed: 42 },
        Arrivals::Gamma {
            burstiness: 0.5,
            seed: 42,
        },
    ] {
        let spec = ScheduleSpec::constant(100.0).for_requests(1000).with_arrivals(arrivals);
        assert_eq!(all(&spec), all(&spec));
        let other = ScheduleSpec::constant(100.0)
            .for_requests(1000)
            .with_arrivals(match arrivals {
                Arrivals::Poisson { .. } => Arrivals::Poisson { seed: 43 },
                _ => Arrivals::Gamma {
                    burstiness: 0.5,
                    seed: 43,
                },
            });
        assert_ne!(all(&spec), all(&other));
        let got = all(&spec);
        assert!(got.windows(2).all(|w| w[0] <= w[1]), "instants are ordered");
    }
}

/// Count and coefficient of variation of the gaps of a random schedule.
fn stats(arrivals: Arrivals) -> (usize, f64) {
    let spec = ScheduleSpec::constant(1000.0)
        .for_duration(Duration::from_secs(100))
        .with_arrivals(arrivals);
    let t: Vec<f64> = all(&spec).iter().map(Duration::as_secs_f64).collect();
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    (t.len(), var.sqrt() / mean)
}

#[test]
fn poisson_mean_rate_and_dispersion_are_within_statistical_bounds() {
    // 1000 req/s for 100 s: the count is Poisson(100000), standard deviation 316, so
    // ±1% is more than 3 standard deviations. Exponential gaps have CV 1.
    for seed in [1, 2, 3] {
        let (n, cv) = stats(Arrivals::Poisson { seed });
        assert!((99_000..=101_000).contains(&n), "seed {seed}: {n} arrivals");
        assert!((cv - 1.0).abs() < 0.02, "seed {seed}: CV {cv}");
    }
}

#[test]
fn gamma_burstiness_keeps_the_rate_and_sets_the_dispersion() {
    // Gamma gaps with shape k have CV 1/sqrt(k) and the same mean as Poisson's.
    for k in [0.25, 1.0, 4.0] {
        let (n, cv) = stats(Arrivals::Gamma { burstiness: k, seed: 9 });
        let want = 1.0 / f64::sqrt(k);
        assert!((97_000..=103_000).contains(&n), "k {k}: {n} arrivals");
        assert!((cv - want).abs() < 0.05 * want, "k {k}: CV {cv}, want {want}");
    }
}

#[test]
fn unusable_specs_are_rejected() {
    assert_eq!(
        ScheduleSpec::constant(10.0).build().err(),
        Some(ScheduleError::Unbounded)
    );
    assert_eq!(
        ScheduleSpec::constant(0.0).for_requests(1).build().err(),
        Some(ScheduleError::Rate(0.0))
    );
    assert!(matches!(
        ScheduleSpec::constant(f64::NAN).for_requests(1).build(),
        Err(ScheduleError::Rate(_))
    ));
    let bad_burst = ScheduleSpec::constant(1.0)
        .for_requests(1)
        .with_arrivals(Arrivals::Gamma {
            burstiness: 0.0,
            seed: 1,
        });
    assert_eq!(bad_burst.build().err(), Some(ScheduleError::Burstiness(0.0)));
    let empty_ramp = ScheduleSpec {
        profile: Profile::Ramp {
            from: 0.0,
            to: 0.0,
            over: ms(100),
        },
        ..ScheduleSpec::constant(1.0)
    };
    assert_eq!(empty_ramp.build().err(), Some(ScheduleError::Empty));
    let paused = ScheduleSpec {
        profile: Profile::Steps(vec![Step {
            rate: 0.0,
            duration: ms(100),
        }]),
        ..ScheduleSpec::constant(1.0)
    };
    assert_eq!(paused.build().err(), Some(ScheduleError::Empty));
}
