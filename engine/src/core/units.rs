//! Integer units for time and money. No floating point sums anywhere money or time is added up.
//!
//! Instants and durations are microseconds; money is picodollars (1e-12 USD), small enough that
//! every per-token price in LiteLLM's price table (down to 1e-8 USD and finer fractions of it) is
//! an exact integer.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time, microseconds since an epoch chosen by the driver (the Unix epoch for the live
/// proxy, the start of the workload for synthetic simulations).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct InstantUs(pub u64);

/// A span of time in microseconds.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct DurationUs(pub u64);

/// Money in picodollars (1e-12 USD). `u64` holds up to about 18.4 million USD.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PicoUsd(pub u64);

pub const US_PER_MS: u64 = 1_000;
pub const US_PER_SEC: u64 = 1_000_000;
pub const US_PER_MINUTE: u64 = 60 * US_PER_SEC;
pub const PICO_PER_USD: u64 = 1_000_000_000_000;

impl InstantUs {
    pub const ZERO: InstantUs = InstantUs(0);

    pub fn plus(self, d: DurationUs) -> InstantUs {
        InstantUs(self.0.saturating_add(d.0))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: InstantUs) -> DurationUs {
        DurationUs(self.0.saturating_sub(earlier.0))
    }

    /// The calendar minute this instant falls in (LiteLLM counts usage per wall-clock minute).
    pub fn minute(self) -> u64 {
        self.0 / US_PER_MINUTE
    }

    pub fn as_ms(self) -> u64 {
        self.0 / US_PER_MS
    }
}

impl DurationUs {
    pub const ZERO: DurationUs = DurationUs(0);

    pub fn from_ms(ms: u64) -> DurationUs {
        DurationUs(ms.saturating_mul(US_PER_MS))
    }

    pub fn from_secs(s: u64) -> DurationUs {
        DurationUs(s.saturating_mul(US_PER_SEC))
    }

    pub fn as_ms(self) -> u64 {
        self.0 / US_PER_MS
    }

    /// Milliseconds, rounded up: used for "try again in N" messages and headers.
    pub fn as_ms_ceil(self) -> u64 {
        self.0.div_ceil(US_PER_MS)
    }

    pub fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(US_PER_SEC)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / US_PER_SEC as f64
    }
}

impl fmt::Display for DurationUs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= US_PER_SEC {
            write!(
                f,
                "{}.{:03}s",
                self.0 / US_PER_SEC,
                (self.0 % US_PER_SEC) / US_PER_MS
            )
        } else {
            write!(f, "{}.{:03}ms", self.0 / US_PER_MS, self.0 % US_PER_MS)
        }
    }
}

impl PicoUsd {
    pub const ZERO: PicoUsd = PicoUsd(0);

    pub fn saturating_add(self, o: PicoUsd) -> PicoUsd {
        PicoUsd(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: PicoUsd) -> PicoUsd {
        PicoUsd(self.0.saturating_sub(o.0))
    }

    /// Price per token times a token count.
    pub fn times(self, tokens: u64) -> PicoUsd {
        PicoUsd(self.0.saturating_mul(tokens))
    }

    /// Exact decimal USD, trailing zeros trimmed (`0.000123`, `12`).
    pub fn to_usd_string(self) -> String {
        let whole = self.0 / PICO_PER_USD;
        let frac = self.0 % PICO_PER_USD;
        if frac == 0 {
            return whole.to_string();
        }
        let s = format!("{whole}.{frac:012}");
        s.trim_end_matches('0').to_string()
    }

    /// USD as a float, for display and JSON only (never summed).
    pub fn as_usd_f64(self) -> f64 {
        self.0 as f64 / PICO_PER_USD as f64
    }

    /// Parses a decimal USD amount exactly: `3e-06`, `0.000003`, `15`, `1.5E-7`.
    /// Fractions finer than a picodollar are rounded to the nearest picodollar.
    pub fn parse_usd(s: &str) -> Result<PicoUsd, String> {
        parse_decimal_scaled(s, 12).map(PicoUsd)
    }
}

impl fmt::Display for PicoUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.to_usd_string())
    }
}

/// Parses a non-negative decimal number (optionally with an exponent) and returns it multiplied by
/// `10^scale`, rounded half-up, without going through floating point.
pub fn parse_decimal_scaled(s: &str, scale: i32) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty number".into());
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.starts_with('-') {
        return Err(format!("`{s}` is negative"));
    }
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = t[i + 1..]
                .parse()
                .map_err(|_| format!("`{s}` is not a number"))?;
            (&t[..i], e)
        }
        None => (t, 0),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    let int_part = int_part.replace('_', "");
    let frac_part = frac_part.replace('_', "");
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(format!("`{s}` is not a number"));
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("`{s}` is not a number"));
    }
    // digits * 10^(exp + scale - frac_len)
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let shift = exp as i64 + scale as i64 - frac_part.len() as i64;
    if digits.is_empty() {
        return Ok(0);
    }
    if shift >= 0 {
        let mut v: u128 = digits
            .parse::<u128>()
            .map_err(|_| format!("`{s}` is too large"))?;
        for _ in 0..shift {
            v = v
                .checked_mul(10)
                .ok_or_else(|| format!("`{s}` is too large"))?;
        }
        u64::try_from(v).map_err(|_| format!("`{s}` is too large"))
    } else {
        let drop = (-shift) as usize;
        if drop > digits.len() {
            // Below a tenth of the unit: rounds to zero.
            return Ok(0);
        }
        let (keep, rest) = digits.split_at(digits.len() - drop);
        let mut v: u128 = if keep.is_empty() {
            0
        } else {
            keep.parse::<u128>()
                .map_err(|_| format!("`{s}` is too large"))?
        };
        if rest.as_bytes().first().is_some_and(|&b| b >= b'5') {
            v += 1;
        }
        u64::try_from(v).map_err(|_| format!("`{s}` is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prices_exactly() {
        assert_eq!(PicoUsd::parse_usd("3e-06").unwrap(), PicoUsd(3_000_000));
        assert_eq!(PicoUsd::parse_usd("0.000015").unwrap(), PicoUsd(15_000_000));
        assert_eq!(PicoUsd::parse_usd("1.5E-7").unwrap(), PicoUsd(150_000));
        assert_eq!(PicoUsd::parse_usd("3.75e-8").unwrap(), PicoUsd(37_500));
        assert_eq!(
            PicoUsd::parse_usd("15").unwrap(),
            PicoUsd(15 * PICO_PER_USD)
        );
        assert_eq!(PicoUsd::parse_usd("0").unwrap(), PicoUsd(0));
        assert_eq!(PicoUsd::parse_usd("1e-13").unwrap(), PicoUsd(0));
        assert_eq!(PicoUsd::parse_usd("6e-13").unwrap(), PicoUsd(1));
        assert!(PicoUsd::parse_usd("-1").is_err());
        assert!(PicoUsd::parse_usd("abc").is_err());
        assert!(PicoUsd::parse_usd("1e40").is_err());
    }

    #[test]
    fn formats_usd_exactly() {
        assert_eq!(PicoUsd(3_000_000).to_usd_string(), "0.000003");
        assert_eq!(PicoUsd(2 * PICO_PER_USD).to_usd_string(), "2");
        assert_eq!(PicoUsd(PICO_PER_USD + 5).to_usd_string(), "1.000000000005");
    }

    #[test]
    fn decimal_scaling_for_durations() {
        assert_eq!(parse_decimal_scaled("30", 6).unwrap(), 30_000_000);
        assert_eq!(parse_decimal_scaled("0.5", 6).unwrap(), 500_000);
        assert_eq!(parse_decimal_scaled("1_000", 0).unwrap(), 1000);
    }
}
