//! The one seeded PRNG of gateprobe (xoshiro256++, seeded through SplitMix64) and the
//! distributions its users need: uniform, exponential, normal and gamma for arrival
//! schedules and the mocks' timing, and a shuffle for the probe order.
//!
//! Why not `rand`/`rand_distr`: a schedule's seed is part of a reproducible run, so the
//! sequence it yields must not change when a dependency is upgraded, and `rand`
//! documents that minor versions may change the values its generators and
//! distributions produce. Fifty lines of well-known algorithms pin the sequence to this
//! code, and the hot path (one draw per request) stays allocation- and branch-light.

/// xoshiro256++ (Blackman and Vigna): fast, 256-bit state, passes BigCrush.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        // SplitMix64 spreads any seed (even 0) over the whole state, as the
        // xoshiro authors recommend.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A generator for the `index`-th request of a stream seeded with `seed`, so each
    /// request's samples do not depend on how many others were drawn before it.
    pub fn for_request(seed: u64, index: u64) -> Self {
        Rng::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407))
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }

    /// Uniform in (0, 1]: never 0, so `ln` of it is always finite.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Exponential with mean 1.
    pub fn exp1(&mut self) -> f64 {
        -self.unit().ln()
    }

    /// Standard normal (Box-Muller; one of the pair is enough at these rates).
    pub fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.unit().ln()).sqrt();
        r * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Gamma with shape `k` > 0 and scale 1 (Marsaglia and Tsang, 2000).
    pub fn gamma(&mut self, k: f64) -> f64 {
        if k < 1.0 {
            // Gamma(k) = Gamma(k + 1) * U^(1/k), the standard boost for small shapes.
            let u = self.unit();
            return self.gamma(k + 1.0) * u.powf(1.0 / k);
        }
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(8);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn request_streams_differ_and_shuffles_are_permutations() {
        assert_ne!(Rng::for_request(1, 0).next_u64(), Rng::for_request(1, 1).next_u64());
        let mut v: Vec<u32> = (0..50).collect();
        Rng::new(3).shuffle(&mut v);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn distribution_means_and_variances() {
        let mut r = Rng::new(42);
        let n = 200_000;
        for (k, draw) in [(0.5, 0), (1.0, 0), (4.0, 0), (1.0, 1)] {
            let xs: Vec<f64> = (0..n).map(|_| if draw == 0 { r.gamma(k) } else { r.exp1() }).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            // Gamma(k, 1): mean k, variance k. Standard error of the mean sqrt(k/n):
            // 0.2% of k at these sizes, so a 2% band is more than 9 standard errors.
            assert!((mean - k).abs() < 0.02 * k, "k {k}: mean {mean}");
            assert!((var - k).abs() < 0.06 * k, "k {k}: variance {var}");
        }
    }
}
