//! The arithmetic of the CRM analytics: percentiles of durations and rates, the same way for every
//! figure the analytics endpoint shows.

use serde::Serialize;

/// Durations summarised: how many, and the 50th and 90th percentiles (nearest rank), in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Durations {
    pub count: usize,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// Summarises durations given in microseconds; negative ones (clock skew) count as zero.
pub fn durations(mut micros: Vec<i64>) -> Durations {
    micros.iter_mut().for_each(|value| *value = (*value).max(0));
    micros.sort_unstable();
    let seconds = |value: Option<i64>| value.map(|micros| (micros as f64 / 1e4).round() / 100.0);
    Durations {
        count: micros.len(),
        p50_seconds: seconds(percentile(&micros, 50)),
        p90_seconds: seconds(percentile(&micros, 90)),
    }
}

/// The `p`th percentile of sorted values by nearest rank: the smallest value with at least p% of
/// the values at or below it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

/// `part / whole`, or None when there is no whole to speak of.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_by_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 50), Some(5));
        assert_eq!(percentile(&values, 90), Some(9));
        assert_eq!(percentile(&values, 100), Some(10));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn durations_are_summarised_in_seconds() {
        let summary = durations(vec![3_000_000, 1_000_000, 2_000_000, -5]);
        assert_eq!(summary.count, 4);
        assert_eq!(summary.p50_seconds, Some(1.0));
        assert_eq!(summary.p90_seconds, Some(3.0));
        assert_eq!(durations(Vec::new()).p50_seconds, None);
    }

    #[test]
    fn a_rate_needs_a_whole() {
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 0), None);
    }
}
