//! Picking one deployment among the eligible ones: `order` tiers, the routing strategies, sticky
//! A/B assignment and exploration. Synchronous and bounded: one pass over the candidates.

use crate::config::{RoutingConfig, Strategy};
use crate::core::rng::Rng;
use crate::core::state::State;
use crate::core::units::InstantUs;
use smallvec::{smallvec, SmallVec};

/// Deployment indices (or per-deployment figures) of one decision: on the stack for groups of up
/// to eight deployments.
pub type Small<T> = SmallVec<[T; 8]>;

#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    pub deployment: usize,
    /// Probability of this pick given the candidates (policy mixed with exploration).
    pub probability: f64,
    pub explored: bool,
}

/// Weights of the policy's distribution over `tier` (same order). Deterministic strategies give
/// weight 1 to each tied best deployment and 0 to the rest.
fn policy_weights(
    cfg: &RoutingConfig,
    st: &State,
    now: InstantUs,
    tier: &[usize],
    stream: bool,
) -> Small<u64> {
    let deps = &cfg.deployments;
    match cfg.strategy {
        Strategy::SimpleShuffle => {
            // LiteLLM: `weight` if any deployment has one, else `rpm`, else `tpm`, else uniform; a
            // deployment without the chosen field weighs 0.
            let field: fn(&crate::config::Deployment) -> Option<u64> =
                if tier.iter().any(|&i| deps[i].weight_milli.is_some()) {
                    |d| d.weight_milli
                } else if tier.iter().any(|&i| deps[i].rpm.is_some()) {
                    |d| d.rpm
                } else if tier.iter().any(|&i| deps[i].tpm.is_some()) {
                    |d| d.tpm
                } else {
                    return smallvec![1; tier.len()];
                };
            let w: Small<u64> = tier.iter().map(|&i| field(&deps[i]).unwrap_or(0)).collect();
            if w.iter().all(|&x| x == 0) {
                smallvec![1; tier.len()]
            } else {
                w
            }
        }
        Strategy::LeastBusy => argmin(tier, |i| st.deployments[i].in_flight as u128),
        Strategy::UsageBasedRouting | Strategy::UsageBasedRoutingV2 => argmin(tier, |i| {
            let w = &st.deployments[i].window;
            ((w.tokens_at(now) as u128) << 64) | w.requests_at(now) as u128
        }),
        Strategy::CostBasedRouting => argmin(tier, |i| {
            let p = &deps[i].prices;
            p.input_per_token.0 as u128 + p.output_per_token.0 as u128
        }),
        Strategy::LatencyBasedRouting => {
            let ttl = cfg.strategy_args.ttl;
            let avgs: Small<Option<u64>> = tier
                .iter()
                .map(|&i| {
                    let ds = &st.deployments[i];
                    let q = if stream {
                        &ds.ttft
                    } else {
                        &ds.latency_per_token
                    };
                    q.mean(now, ttl)
                })
                .collect();
            // Deployments without recent data are tried first, at random.
            if avgs.iter().any(Option::is_none) {
                return avgs.iter().map(|a| u64::from(a.is_none())).collect();
            }
            let best = avgs.iter().flatten().copied().min().unwrap_or(0) as u128;
            let limit =
                best * (1000 + cfg.strategy_args.lowest_latency_buffer_milli as u128) / 1000;
            avgs.iter()
                .map(|a| u64::from(a.is_some_and(|v| v as u128 <= limit)))
                .collect()
        }
    }
}

fn argmin(tier: &[usize], key: impl Fn(usize) -> u128) -> Small<u64> {
    let keys: Small<u128> = tier.iter().map(|&i| key(i)).collect();
    let best = keys.iter().copied().min().unwrap_or(0);
    keys.iter().map(|&k| u64::from(k == best)).collect()
}

/// Draws an index into `weights` proportionally. `draw` is a uniform `u64`.
fn weighted_index(weights: &[u64], draw: u64) -> usize {
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    if total == 0 {
        return 0;
    }
    let mut x = ((draw as u128) * total) >> 64;
    for (i, &w) in weights.iter().enumerate() {
        if x < w as u128 {
            return i;
        }
        x -= w as u128;
    }
    weights.len() - 1
}

/// Picks among `eligible` (non-empty, ascending indices). `sticky` replaces the random draw of
/// the weighted pick with a hash of the request attribute, so one caller stays on one arm.
#[allow(clippy::too_many_arguments)] // every input is a distinct fact of the decision
pub fn pick(
    cfg: &RoutingConfig,
    st: &State,
    now: InstantUs,
    eligible: &[usize],
    stream: bool,
    rng: &mut Rng,
    explore_rng: &mut Rng,
    sticky: Option<u64>,
) -> Pick {
    debug_assert!(!eligible.is_empty());
    let min_order = eligible
        .iter()
        .map(|&i| cfg.deployments[i].order.unwrap_or(u32::MAX))
        .min()
        .unwrap_or(u32::MAX);
    let tier: Small<usize> = eligible
        .iter()
        .copied()
        .filter(|&i| cfg.deployments[i].order.unwrap_or(u32::MAX) == min_order)
        .collect();
    let weights = policy_weights(cfg, st, now, &tier, stream);
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    let draw = match (sticky, cfg.strategy) {
        (Some(h), Strategy::SimpleShuffle) => h,
        _ => rng.next_u64(),
    };
    let eps = cfg.exploration_ppm as f64 / 1e6;
    let explored = cfg.exploration_ppm > 0 && explore_rng.chance_ppm(cfg.exploration_ppm);
    let chosen = if explored {
        eligible[explore_rng.below(eligible.len() as u64) as usize]
    } else {
        tier[weighted_index(&weights, draw)]
    };
    let p_policy = match tier.iter().position(|&i| i == chosen) {
        Some(pos) if total > 0 => weights[pos] as f64 / total as f64,
        _ => 0.0,
    };
    let probability = (1.0 - eps) * p_policy + eps / eligible.len() as f64;
    Pick {
        deployment: chosen,
        probability,
        explored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_index_respects_weights() {
        assert_eq!(weighted_index(&[1, 0, 0], 0), 0);
        assert_eq!(weighted_index(&[0, 1, 0], u64::MAX), 1);
        assert_eq!(weighted_index(&[1, 1], u64::MAX / 2 - 1), 0);
        assert_eq!(weighted_index(&[1, 1], u64::MAX / 2 + 2), 1);
    }
}
