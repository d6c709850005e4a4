//! The one-sided binomial fraud test (poc-math §3.1).
//!
//! `p_value = P[X ≥ n_mismatch]` for `X ~ Binomial(n_total, p_mismatch)` — scipy's
//! `binomtest(..., alternative="greater")` — and `fraud_detected = p_value < fraud_threshold`
//! (strict). `n_total == 0` gives `(1.0, false)`.
//!
//! The tail is summed by hand: the first term comes from log-gamma, the rest by the
//! term ratio, so there is no overflow for large `n` and p-values far below `f64`'s
//! normal range underflow gracefully to 0. When `n_mismatch` is at or below the mode,
//! the tail is large and is computed as `1 − P[X ≤ k−1]` instead, which sums a short,
//! decreasing series.

/// A rejected test parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatTestError {
    #[error("p_mismatch must be a probability in [0, 1], got {0}")]
    PMismatchOutOfRange(f64),
    #[error("{name} must be finite and >= 0, got {value}")]
    BadThreshold { name: &'static str, value: f64 },
    #[error("n_mismatch ({n_mismatch}) exceeds n_total ({n_total})")]
    MismatchExceedsTotal { n_mismatch: u64, n_total: u64 },
}

/// The outcome of the fraud test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FraudVerdict {
    pub p_value: f64,
    pub fraud_detected: bool,
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9; ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps accuracy near 0.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn ln_binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    let (kf, nf) = (k as f64, n as f64);
    ln_gamma(nf + 1.0) - ln_gamma(kf + 1.0) - ln_gamma(nf - kf + 1.0)
        + kf * p.ln()
        + (nf - kf) * (-p).ln_1p()
}

/// `P[X ≥ k]` for `X ~ Binomial(n, p)`. `k == 0` gives exactly 1.0, `k > n` gives 0.0.
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let q = 1.0 - p;
    let mode = ((n as f64 + 1.0) * p).floor() as u64;
    if k > mode {
        // Terms decrease from k upwards: sum ratios relative to the first term.
        let ln_first = ln_binomial_pmf(k, n, p);
        let odds = p / q;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        let mut i = k;
        while i < n {
            term *= (n - i) as f64 / (i + 1) as f64 * odds;
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
            i += 1;
        }
        (ln_first + sum.ln()).exp().min(1.0)
    } else {
        // 1 − P[X ≤ k−1]; terms decrease from k−1 downwards.
        let top = k - 1;
        let ln_first = ln_binomial_pmf(top, n, p);
        let inv_odds = q / p;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        let mut i = top;
        while i > 0 {
            term *= i as f64 / (n - i + 1) as f64 * inv_odds;
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
            i -= 1;
        }
        let lower = (ln_first + sum.ln()).exp();
        (1.0 - lower).clamp(0.0, 1.0)
    }
}

fn check_threshold(name: &'static str, value: f64) -> Result<(), StatTestError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(StatTestError::BadThreshold { name, value })
    }
}

/// Validate `p_mismatch` and `fraud_threshold` as the test needs them.
pub fn check_params(p_mismatch: f64, fraud_threshold: f64) -> Result<(), StatTestError> {
    if !(0.0..=1.0).contains(&p_mismatch) {
        return Err(StatTestError::PMismatchOutOfRange(p_mismatch));
    }
    check_threshold("fraud_threshold", fraud_threshold)
}

/// Validate a distance gate.
pub fn check_dist_threshold(dist_threshold: f64) -> Result<(), StatTestError> {
    check_threshold("dist_threshold", dist_threshold)
}

/// Run the fraud test exactly as the node does.
pub fn fraud_test(
    n_mismatch: u64,
    n_total: u64,
    p_mismatch: f64,
    fraud_threshold: f64,
) -> Result<FraudVerdict, StatTestError> {
    check_params(p_mismatch, fraud_threshold)?;
    if n_total == 0 {
        return Ok(FraudVerdict {
            p_value: 1.0,
            fraud_detected: false,
        });
    }
    if n_mismatch > n_total {
        return Err(StatTestError::MismatchExceedsTotal {
            n_mismatch,
            n_total,
        });
    }
    let p_value = binomial_upper_tail(n_mismatch, n_total, p_mismatch);
    Ok(FraudVerdict {
        p_value,
        fraud_detected: p_value < fraud_threshold,
    })
}

/// Smallest `k` with `P[X ≥ k] < alpha`: the conviction line. `None` if no `k ≤ n` convicts.
pub fn conviction_line(n: u64, p: f64, alpha: f64) -> Option<u64> {
    (0..=n).find(|&k| binomial_upper_tail(k, n, p) < alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    /// poc-math §3.5, every row: P[X≥k*] < α ≤ P[X≥k*−1], and the printed values.
    #[test]
    fn conviction_table() {
        let rows: [(u64, f64, f64, u64, f64, f64); 8] = [
            (200, 0.10, 0.05, 28, 0.04343, 0.06722),
            (200, 0.10, 0.01, 31, 0.00951, 0.01633),
            (200, 0.001, 0.01, 3, 0.00113, 0.01746),
            (32, 0.001, 0.01, 2, 0.00049, 0.03151),
            (32, 0.10, 0.05, 7, 0.03585, 0.09440),
            (64, 0.10, 0.05, 12, 0.02363, 0.05157),
            (200, 0.1198, 0.01, 36, 0.00835, 0.01398),
            (1000, 0.10, 0.05, 117, 0.04334, 0.05345),
        ];
        for (n, p, alpha, k, at_k, at_k_minus_1) in rows {
            let a = binomial_upper_tail(k, n, p);
            let b = binomial_upper_tail(k - 1, n, p);
            assert!(a < alpha && alpha <= b, "n={n} p={p} α={alpha}: {a} {b}");
            assert!((a - at_k).abs() < 5e-6, "n={n} p={p} k={k}: {a} vs {at_k}");
            assert!((b - at_k_minus_1).abs() < 5e-6, "{b} vs {at_k_minus_1}");
            assert_eq!(conviction_line(n, p, alpha), Some(k));
        }
    }

    /// Reference values computed with exact rational arithmetic (Python `fractions`),
    /// rounded to 10 significant digits; checked to 7.
    #[test]
    fn exact_table() {
        let cases: &[(u64, u64, f64, f64)] = &[
            (1, 32, 0.001, 0.03150892424),
            (2, 32, 0.001, 0.000486187079),
            (0, 32, 0.001, 1.0),
            (32, 32, 0.001, 1e-96),
            (1, 1, 0.5, 0.5),
            (3, 10, 0.5, 0.9453125),
            (5, 10, 0.5, 0.623046875),
            (10, 10, 0.5, 0.0009765625),
            (28, 200, 0.1, 0.04342849961),
            (20, 200, 0.1, 0.5344615292),
            (14, 200, 0.1, 0.9434379569),
            (1, 200, 0.1, 0.9999999993),
            (60, 200, 0.1, 3.700520421e-15),
            (117, 1000, 0.1, 0.04334389124),
            (100, 1000, 0.1, 0.5154177096),
            (300, 1000, 0.1, 6.823349108e-69),
            (40, 2000, 0.02, 0.5216657386),
            (60, 2000, 0.02, 0.001691839838),
            (5, 2000, 0.001, 0.0525627487),
            (1000, 2000, 0.5, 0.5089195056),
            (1100, 2000, 0.5, 4.228544768e-06),
            (7, 64, 0.1, 0.4609611565),
            (12, 64, 0.1, 0.02363010889),
            (2, 5, 0.3, 0.47178),
        ];
        for &(k, n, p, expected) in cases {
            let got = binomial_upper_tail(k, n, p);
            assert!(
                close(got, expected, 1e-7),
                "P[X>={k}] n={n} p={p}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn edges() {
        assert_eq!(binomial_upper_tail(0, 0, 0.5), 1.0);
        assert_eq!(binomial_upper_tail(1, 0, 0.5), 0.0);
        assert_eq!(binomial_upper_tail(1, 10, 0.0), 0.0);
        assert_eq!(binomial_upper_tail(10, 10, 1.0), 1.0);
        let v = fraud_test(0, 0, 0.001, 0.01).unwrap();
        assert_eq!((v.p_value, v.fraud_detected), (1.0, false));
        let v = fraud_test(0, 32, 0.001, 0.01).unwrap();
        assert_eq!((v.p_value, v.fraud_detected), (1.0, false));
    }

    #[test]
    fn strict_less_than_threshold() {
        let p = binomial_upper_tail(1, 32, 0.001);
        assert!(
            !fraud_test(1, 32, 0.001, p).unwrap().fraud_detected,
            "p == α is not fraud"
        );
        assert!(
            fraud_test(1, 32, 0.001, p * (1.0 + 1e-12))
                .unwrap()
                .fraud_detected
        );
        // The defaults: 1 of 32 tolerated, 2 of 32 convicted.
        assert!(!fraud_test(1, 32, 0.001, 0.01).unwrap().fraud_detected);
        assert!(fraud_test(2, 32, 0.001, 0.01).unwrap().fraud_detected);
    }

    #[test]
    fn parameter_validation() {
        assert_eq!(
            fraud_test(1, 2, 1.5, 0.01),
            Err(StatTestError::PMismatchOutOfRange(1.5))
        );
        assert!(fraud_test(1, 2, f64::NAN, 0.01).is_err());
        assert!(matches!(
            fraud_test(1, 2, 0.1, -0.1),
            Err(StatTestError::BadThreshold {
                name: "fraud_threshold",
                ..
            })
        ));
        assert!(fraud_test(1, 2, 0.1, f64::INFINITY).is_err());
        assert!(check_dist_threshold(f64::NAN).is_err());
        assert!(check_dist_threshold(0.0).is_ok());
        assert!(matches!(
            fraud_test(3, 2, 0.1, 0.01),
            Err(StatTestError::MismatchExceedsTotal { .. })
        ));
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= f64::from(n);
            assert!(close(ln_gamma(f64::from(n) + 1.0), f.ln(), 1e-13), "n={n}");
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
    }
}
