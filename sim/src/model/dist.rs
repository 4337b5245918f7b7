//! Distributions that keep real tails: empirical quantile tables (piecewise-linear inverse CDF),
//! log-normals, and mixtures of them. Sampling is pure and seeded (`switchyard_engine`'s pinned
//! RNG), with `libm` for the transcendental functions so results do not depend on the platform's
//! math library.

use serde::{Deserialize, Serialize};
use switchyard_engine::core::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// Always this value.
    Constant(f64),
    /// `median * exp(sigma * Z)`, Z standard normal.
    LogNormal { median: f64, sigma: f64 },
    /// Inverse CDF by linear interpolation between `(quantile, value)` points; quantiles
    /// ascending from 0 to 1.
    Quantiles(Vec<(f64, f64)>),
    /// Weighted components.
    Mixture(Vec<(f64, Dist)>),
}

/// A standard normal draw: Marsaglia and Tsang's ziggurat (256 layers). Most draws cost one
/// random word and a multiplication; about 1 % also take an `exp` (the wedge test) and rarer
/// ones two logs (the tail past `R`). The tables are computed once, with `libm`, so the stream
/// is the same on every platform.
pub fn standard_normal(rng: &mut Rng) -> f64 {
    let z = ziggurat();
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        // 53 bits above the layer's 8: a uniform in [-1, 1).
        let u = ((bits >> 11) as f64) * (1.0 / (1u64 << 53) as f64) * 2.0 - 1.0;
        let x = u * z.x[i];
        if x.abs() < z.x[i + 1] {
            return x;
        }
        if i == 0 {
            // The tail beyond R (Marsaglia 1964).
            loop {
                let a = -libm::log(1.0 - rng.unit_f64()) / ZIG_R;
                let b = -libm::log(1.0 - rng.unit_f64());
                if 2.0 * b >= a * a {
                    return if u < 0.0 { -(ZIG_R + a) } else { ZIG_R + a };
                }
            }
        }
        // The wedge between layer i's rectangle and the curve.
        if z.f[i + 1] + (z.f[i] - z.f[i + 1]) * rng.unit_f64() < libm::exp(-0.5 * x * x) {
            return x;
        }
    }
}

/// Where the ziggurat's base layer ends, and the area of each of its 256 layers.
const ZIG_R: f64 = 3.654_152_885_361_009;
const ZIG_V: f64 = 0.004_928_673_233_99;

struct Ziggurat {
    /// Layer edges: `x[0]` the base layer's virtual width `V / f(R)`, `x[1] = R`, down to
    /// `x[256] = 0`.
    x: [f64; 257],
    /// `f(x[i])` with `f(x) = exp(-x^2 / 2)`.
    f: [f64; 257],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let f = |x: f64| libm::exp(-0.5 * x * x);
        let mut z = Ziggurat {
            x: [0.0; 257],
            f: [0.0; 257],
        };
        z.x[0] = ZIG_V / f(ZIG_R);
        z.x[1] = ZIG_R;
        for i in 2..256 {
            let y = ZIG_V / z.x[i - 1] + f(z.x[i - 1]);
            z.x[i] = libm::sqrt(-2.0 * libm::log(y.min(1.0)));
        }
        z.x[256] = 0.0;
        for i in 0..257 {
            z.f[i] = f(z.x[i]);
        }
        z
    })
}

/// `x.round().max(1.0) as u64` (a token count drawn from a distribution), exactly, without the
/// call to `round` that targets without SSE4.1 make for `f64::round`.
#[inline]
pub fn count_at_least_one(x: f64) -> u64 {
    // Below 1 (and NaN): `round` gives at most 1, and `max(1.0)` 1.
    if x.is_nan() || x < 1.0 {
        return 1;
    }
    // From 2^52 on every double is an integer (and `as` saturates as it would after `round`).
    if x >= 4_503_599_627_370_496.0 {
        return x as u64;
    }
    // x = t + f with 0 <= f < 1, both exact here; round half away from zero.
    let t = x as u64;
    if x - t as f64 >= 0.5 {
        t + 1
    } else {
        t
    }
}

/// An exponential draw with the given mean.
pub fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -mean * libm::log(1.0 - rng.unit_f64())
}

impl Dist {
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Dist::Constant(v) => *v,
            Dist::LogNormal { median, sigma } => median * libm::exp(sigma * standard_normal(rng)),
            Dist::Quantiles(points) => quantile_of(points, rng.unit_f64()),
            Dist::Mixture(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                let mut x = rng.unit_f64() * total;
                for (w, d) in parts {
                    if x < *w {
                        return d.sample(rng);
                    }
                    x -= w;
                }
                parts.last().map_or(0.0, |(_, d)| d.sample(rng))
            }
        }
    }

    /// The q-quantile, where it has a closed form (quantile tables, constants, log-normals).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Dist::Constant(v) => Some(*v),
            Dist::LogNormal { median, sigma } => {
                Some(median * libm::exp(sigma * normal_quantile(q)))
            }
            Dist::Quantiles(points) => Some(quantile_of(points, q)),
            Dist::Mixture(_) => None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match self {
            Dist::Constant(v) if !(v.is_finite() && *v >= 0.0) => {
                Err("constant must be a non-negative number".into())
            }
            Dist::LogNormal { median, sigma }
                if !(median.is_finite() && *median > 0.0 && sigma.is_finite() && *sigma >= 0.0) =>
            {
                Err("lognormal needs median > 0 and sigma >= 0".into())
            }
            Dist::Quantiles(p) => {
                if p.len() < 2 {
                    return Err("a quantile table needs at least two points".into());
                }
                if p.first().map(|x| x.0) != Some(0.0) || p.last().map(|x| x.0) != Some(1.0) {
                    return Err(
                        "a quantile table must start at quantile 0 and end at quantile 1".into(),
                    );
                }
                if p.windows(2).any(|w| w[1].0 <= w[0].0 || w[1].1 < w[0].1) {
                    return Err("quantiles and values must be ascending".into());
                }
                if p.iter().any(|x| !x.1.is_finite() || x.1 < 0.0) {
                    return Err("quantile values must be non-negative numbers".into());
                }
                Ok(())
            }
            Dist::Mixture(parts) => {
                if parts.is_empty() || parts.iter().any(|(w, _)| !(w.is_finite() && *w > 0.0)) {
                    return Err("a mixture needs components with positive weights".into());
                }
                parts.iter().try_for_each(|(_, d)| d.validate())
            }
            _ => Ok(()),
        }
    }
}

fn quantile_of(points: &[(f64, f64)], u: f64) -> f64 {
    match points.iter().position(|(q, _)| *q >= u) {
        None => points.last().map_or(0.0, |p| p.1),
        Some(0) => points[0].1,
        Some(i) => {
            let (q0, v0) = points[i - 1];
            let (q1, v1) = points[i];
            if q1 <= q0 {
                v1
            } else {
                v0 + (v1 - v0) * (u - q0) / (q1 - q0)
            }
        }
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
/// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let plow = 0.02425;
    if p < plow {
        let q = libm::sqrt(-2.0 * libm::log(p));
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = libm::sqrt(-2.0 * libm::log(1.0 - p));
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Empirical quantile of sorted data (linear interpolation).
pub fn empirical_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    if i + 1 >= sorted.len() {
        sorted[sorted.len() - 1]
    } else {
        sorted[i] + (sorted[i + 1] - sorted[i]) * frac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_at_least_one_is_round_then_max() {
        let mut rng = Rng::new(9);
        let mut xs: Vec<f64> = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            0.49999999999999994,
            0.5,
            1.0,
            1.4999999999999998,
            1.5,
            2.5,
            3.5,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1.8e19,
            1e300,
            -7.5,
        ];
        for _ in 0..200_000 {
            let e = rng.below(64) as i32 - 8;
            xs.push(rng.unit_f64() * 2f64.powi(e));
            xs.push((rng.below(1 << 20) as f64) + 0.5);
        }
        for x in xs {
            assert_eq!(count_at_least_one(x), x.round().max(1.0) as u64, "{x}");
        }
    }

    fn draws(d: &Dist, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let mut v: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }

    #[test]
    fn lognormal_quantiles_match_parameters() {
        let d = Dist::LogNormal {
            median: 100.0,
            sigma: 0.5,
        };
        let v = draws(&d, 200_000, 1);
        for q in [0.1, 0.5, 0.9, 0.99] {
            let want = d.quantile(q).unwrap();
            let got = empirical_quantile(&v, q);
            assert!(
                (got / want - 1.0).abs() < 0.02,
                "q{q}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn quantile_tables_reproduce_their_tail() {
        let d = Dist::Quantiles(vec![
            (0.0, 10.0),
            (0.5, 20.0),
            (0.9, 40.0),
            (0.99, 200.0),
            (1.0, 1000.0),
        ]);
        d.validate().unwrap();
        let v = draws(&d, 200_000, 2);
        for (q, want) in [(0.5, 20.0), (0.9, 40.0), (0.99, 200.0)] {
            let got = empirical_quantile(&v, q);
            assert!(
                (got / want - 1.0).abs() < 0.03,
                "q{q}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn mixtures_weight_their_components() {
        let d = Dist::Mixture(vec![
            (0.9, Dist::Constant(1.0)),
            (0.1, Dist::Constant(100.0)),
        ]);
        let v = draws(&d, 100_000, 3);
        let big = v.iter().filter(|x| **x > 50.0).count() as f64 / v.len() as f64;
        assert!((big - 0.1).abs() < 0.005, "{big}");
    }

    #[test]
    fn same_seed_same_draws() {
        let d = Dist::LogNormal {
            median: 1.0,
            sigma: 1.0,
        };
        assert_eq!(draws(&d, 100, 9), draws(&d, 100, 9));
        assert_ne!(draws(&d, 100, 9), draws(&d, 100, 10));
    }

    #[test]
    fn ziggurat_layers_are_well_formed() {
        let z = ziggurat();
        assert!((z.x[0] - 3.910_757_959_537_09).abs() < 1e-9, "{}", z.x[0]);
        for i in 1..256 {
            assert!(z.x[i] > z.x[i + 1], "layer {i}");
        }
        // The top layer ends close to the peak: the recurrence closes.
        assert!(
            (z.x[255] - 0.215_241_895_913_273_8).abs() < 1e-9,
            "{}",
            z.x[255]
        );
        assert_eq!(z.f[256], 1.0);
    }

    #[test]
    fn standard_normal_has_the_right_shape() {
        let mut rng = Rng::new(11);
        let n = 400_000;
        let mut v: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        v.sort_by(f64::total_cmp);
        // Quantiles from the far tails to the middle, against the exact inverse CDF.
        for q in [0.0005, 0.005, 0.05, 0.25, 0.5, 0.75, 0.95, 0.995, 0.9995] {
            let got = empirical_quantile(&v, q);
            let want = normal_quantile(q);
            let tol = if !(0.001..=0.999).contains(&q) {
                0.12
            } else {
                0.03
            };
            assert!((got - want).abs() < tol, "q{q}: {got} vs {want}");
        }
        // The tail beyond R = 3.654 is sampled too (P = 2.6e-4 on each side).
        let beyond = v.iter().filter(|x| x.abs() > ZIG_R).count() as f64 / n as f64;
        assert!((beyond - 2.58e-4).abs() < 1e-4, "tail share {beyond}");
    }

    #[test]
    fn normal_quantile_is_accurate() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090232).abs() < 1e-5);
    }
}
