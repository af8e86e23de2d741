//! Deterministic random choices for the crowd bench: a SplitMix64 generator (the same crowd
//! in every run, and no dependency for it) and a Zipf law over file popularity ranks.

/// SplitMix64: small, fast, and good enough to spread viewers over files and offsets.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, bound)`; 0 when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

/// The cumulative Zipf (s = 1) distribution over `n` ranks, rank 0 the most popular.
pub fn zipf_cdf(n: usize) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |sum, weight| {
            *sum += weight / total;
            Some(*sum)
        })
        .collect()
}

/// The rank a uniform draw in `[0, 1)` falls on.
pub fn zipf_pick(cdf: &[f64], unit: f64) -> usize {
    cdf.partition_point(|&p| p < unit)
        .min(cdf.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_the_first_ranks_and_covers_all() {
        let cdf = zipf_cdf(200);
        assert!((cdf[199] - 1.0).abs() < 1e-9);
        assert_eq!(zipf_pick(&cdf, 0.0), 0);
        assert_eq!(zipf_pick(&cdf, 0.999_999_999), 199);
        // Rank 1 of 200 under s = 1 takes 1/H(200) ≈ 17 % of the draws.
        assert!((cdf[0] - 0.171).abs() < 0.01, "{}", cdf[0]);
        let mut random = SplitMix(7);
        let mut counts = [0u32; 200];
        for _ in 0..20_000 {
            counts[zipf_pick(&cdf, random.unit())] += 1;
        }
        assert!(
            counts[0] > 10 * counts[99],
            "{} vs {}",
            counts[0],
            counts[99]
        );
        assert!(counts[0] > 3_000 && counts[0] < 3_900, "{}", counts[0]);
    }

    #[test]
    fn below_stays_below() {
        let mut random = SplitMix(1);
        assert_eq!(random.below(0), 0);
        assert!((0..1000).all(|_| random.below(10) < 10));
    }
}
