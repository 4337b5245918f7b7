//! Prices: a table in LiteLLM's `model_prices_and_context_window.json` format, looked up by model.
//!
//! A small table ships inside the binary; `--prices FILE` loads LiteLLM's full one on top. Prices
//! become exact integer picodollars here (a JSON float is turned back into its shortest decimal
//! spelling, then parsed exactly). Pure: parses strings, never reads files.

use crate::core::units::PicoUsd;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceEntry {
    pub input_per_token: Option<PicoUsd>,
    pub output_per_token: Option<PicoUsd>,
    pub cache_read_per_token: Option<PicoUsd>,
    pub cache_creation_per_token: Option<PicoUsd>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub provider: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    entries: BTreeMap<String, PriceEntry>,
}

const BUILTIN: &str = include_str!("../data/model_prices.json");

fn price(v: &serde_json::Value) -> Option<PicoUsd> {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                return Some(PicoUsd(u.saturating_mul(crate::core::units::PICO_PER_USD)));
            }
            let f = n.as_f64()?;
            if !(f.is_finite() && f >= 0.0) {
                return None;
            }
            PicoUsd::parse_usd(&format!("{f:e}")).ok()
        }
        serde_json::Value::String(s) => PicoUsd::parse_usd(s).ok(),
        _ => None,
    }
}

fn count(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

impl PriceTable {
    /// The table that ships with Switchyard.
    pub fn builtin() -> PriceTable {
        PriceTable::parse_json(BUILTIN).expect("the built-in price table is valid JSON")
    }

    pub fn parse_json(text: &str) -> Result<PriceTable, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("price table: {e}"))?;
        let obj = v
            .as_object()
            .ok_or("price table: expected a JSON object keyed by model")?;
        let mut entries = BTreeMap::new();
        for (model, e) in obj {
            let Some(e) = e.as_object() else { continue };
            let entry = PriceEntry {
                input_per_token: e.get("input_cost_per_token").and_then(price),
                output_per_token: e.get("output_cost_per_token").and_then(price),
                cache_read_per_token: e.get("cache_read_input_token_cost").and_then(price),
                cache_creation_per_token: e.get("cache_creation_input_token_cost").and_then(price),
                max_input_tokens: e.get("max_input_tokens").and_then(count),
                max_output_tokens: e
                    .get("max_output_tokens")
                    .or_else(|| e.get("max_tokens"))
                    .and_then(count),
                provider: e
                    .get("litellm_provider")
                    .and_then(|p| p.as_str())
                    .map(str::to_string),
            };
            entries.insert(model.clone(), entry);
        }
        Ok(PriceTable { entries })
    }

    /// Entries of `other` replace entries of the same name.
    pub fn merge(&mut self, other: PriceTable) {
        self.entries.extend(other.entries);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks a model up as LiteLLM does: the full `provider/model` name first, then the bare name.
    pub fn lookup(&self, full_model: &str) -> Option<&PriceEntry> {
        if let Some(e) = self.entries.get(full_model) {
            return Some(e);
        }
        let bare = full_model.split_once('/').map(|(_, m)| m)?;
        self.entries.get(bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_prices_exactly() {
        let t = PriceTable::builtin();
        let e = t.lookup("anthropic/claude-3-5-sonnet-20241022").unwrap();
        assert_eq!(e.input_per_token, Some(PicoUsd(3_000_000)));
        assert_eq!(e.output_per_token, Some(PicoUsd(15_000_000)));
        assert_eq!(e.cache_creation_per_token, Some(PicoUsd(3_750_000)));
        assert_eq!(e.max_input_tokens, Some(200_000));
        let m = t.lookup("gpt-4o-mini").unwrap();
        assert_eq!(m.cache_read_per_token, Some(PicoUsd(75_000)));
        assert!(t.lookup("openai/Meta-Llama-3.1-8B-Instruct").is_none());
    }

    #[test]
    fn merge_overrides() {
        let mut t = PriceTable::builtin();
        t.merge(PriceTable::parse_json(r#"{"gpt-4o": {"input_cost_per_token": "1e-6"}}"#).unwrap());
        assert_eq!(
            t.lookup("gpt-4o").unwrap().input_per_token,
            Some(PicoUsd(1_000_000))
        );
    }
}
