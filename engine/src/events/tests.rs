use super::*;
use crate::config::VirtualKey;
use crate::core::outcome::{OutcomeClass, RouteError};
use crate::core::units::{InstantUs, PicoUsd};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One sample of every event kind, with every optional field set somewhere.
pub(crate) fn samples() -> Vec<Event> {
    let n = |s: &str| Name::from(s);
    vec![
        Event::ConfigApplied(Box::new(ConfigApplied {
            at: InstantUs(1_700_000_000_000_000),
            hash_hex: "ab".repeat(32),
            content: "{\"routing\":{}}".into(),
            seed: 42,
        })),
        Event::ProxyStarted(Box::new(ProxyStarted {
            at: InstantUs(1_700_000_000_000_001),
            version: "0.1.0".into(),
            next_request_id: 7,
        })),
        Event::RequestReceived(std::sync::Arc::new(RequestReceived {
            at: InstantUs(1_700_000_000_100_000),
            id: 7,
            seed: 0xDEAD_BEEF,
            key_id: Some(n("0123456789abcdef")),
            model: "production-llm".into(),
            endpoint: Endpoint::Chat,
            tokens_in: 1234,
            max_tokens: Some(256),
            stream: true,
            tags: vec!["teamA".into()],
            headers: vec![("x-confidence".into(), "low".into())],
            user: Some("user-1".into()),
            prompt_sha: "00ff".repeat(8),
            prompt: Some("[{\"role\":\"user\",\"content\":\"hi\"}]".into()),
            admission: Admission::Admitted {
                group: n("production-llm"),
                pinned: None,
                reason: Reason::Escalation,
                reserved: PicoUsd(1_000),
            },
            overrides: RequestOverrides {
                fallbacks: Some(vec!["claude".into(), "gpt-4o".into()]),
                num_retries: Some(0),
                timeout_us: Some(2_500_000),
                mock_testing_fallbacks: true,
            },
        })),
        Event::RequestReceived(std::sync::Arc::new(RequestReceived {
            at: InstantUs(1_700_000_000_100_001),
            id: 8,
            seed: 1,
            key_id: None,
            model: "nope".into(),
            endpoint: Endpoint::Embedding,
            tokens_in: 3,
            max_tokens: None,
            stream: false,
            tags: vec![],
            headers: vec![],
            user: None,
            prompt_sha: String::new(),
            prompt: None,
            admission: Admission::Rejected(Box::new(RouteError {
                status: 400,
                kind: "invalid_request_error".into(),
                code: Some("model_not_found".into()),
                param: Some("model".into()),
                message: "Invalid model name passed in model=nope".into(),
                retry_after_ms: None,
            })),
            overrides: RequestOverrides::default(),
        })),
        Event::AttemptDecided(Box::new(AttemptDecided {
            at: InstantUs(1_700_000_000_100_050),
            id: 7,
            attempt: 1,
            group: n("production-llm-fallback"),
            deployment: n("claude"),
            reason: Reason::Fallback,
            explored: true,
            candidates: smallvec::smallvec![n("claude"), n("claude-2")],
            probability: 0.55,
            waited_us: 12,
        })),
        Event::AttemptFinished(Box::new(AttemptFinished {
            at: InstantUs(1_700_000_001_100_050),
            id: 7,
            attempt: 1,
            deployment: n("claude"),
            class: OutcomeClass::RateLimited,
            status: 429,
            stream: true,
            ttft_us: Some(350_000),
            duration_us: 1_000_000,
            tokens_in: 1234,
            tokens_cache_read: 1000,
            tokens_cache_creation: 34,
            tokens_out: 99,
            cost: PicoUsd(123_456),
            retry_after_ms: Some(2000),
            rate_limit: RateLimitInfo {
                limit_requests: Some(50),
                remaining_requests: Some(0),
                limit_tokens: Some(40_000),
                remaining_tokens: Some(100),
                reset_requests_ms: Some(1200),
                reset_tokens_ms: Some(30),
            },
            committed: false,
            message: Some("rate_limit_error: slow down".into()),
        })),
        Event::RequestFinished(Box::new(RequestFinished {
            at: InstantUs(1_700_000_001_200_000),
            id: 7,
            result: RequestResult::Ok,
            latency_us: 1_100_000,
            ttft_us: Some(400_000),
            cost: PicoUsd(123_456),
            n_attempts: 2,
            n_fallbacks: 1,
            deployment: Some(n("claude")),
            tokens_in: 1234,
            tokens_out: 99,
        })),
        Event::KeyCreated(Box::new(KeyCreated {
            at: InstantUs(1_700_000_002_000_000),
            key: VirtualKey {
                id: "0123456789abcdef".into(),
                hash_hex: "cd".repeat(32),
                alias: Some("team-a".into()),
                models: vec!["production-llm".into()],
                aliases: BTreeMap::from([("chat".to_string(), "production-llm".to_string())]),
                rpm_limit: Some(10),
                tpm_limit: Some(1000),
                max_parallel_requests: Some(2),
                max_budget: Some(PicoUsd(5_000_000_000_000)),
                tags: vec!["free".into()],
            },
        })),
        Event::KeyDeleted(Box::new(KeyDeleted {
            at: InstantUs(1_700_000_003_000_000),
            key_id: "0123456789abcdef".into(),
        })),
    ]
}

fn fixture_dir(version: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/events/v{version}"))
}

fn fixture_name(i: usize, ev: &Event) -> String {
    format!("{i:02}-{}", ev.kind().name())
}

/// Frozen encodings written by earlier builds must decode forever: every schema version from
/// `MIN_SCHEMA_VERSION` on has a directory of samples. The JSON beside each sample is what that
/// build exported; read with today's types (fields added later take their defaults) it must equal
/// what the binary sample decodes to. Samples of the current version must also re-encode to the
/// same bytes. To add samples for a new version or kind:
/// `SWITCHYARD_WRITE_FIXTURES=1 cargo test -p switchyard-engine frozen` (existing files are never
/// overwritten).
#[test]
fn frozen_fixtures_decode() {
    let write = std::env::var_os("SWITCHYARD_WRITE_FIXTURES").is_some();
    for version in MIN_SCHEMA_VERSION..=SCHEMA_VERSION {
        let dir = fixture_dir(version);
        if write && version == SCHEMA_VERSION {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut kinds_seen = std::collections::BTreeSet::new();
        for (i, ev) in samples().iter().enumerate() {
            let base = dir.join(fixture_name(i, ev));
            let bin = base.with_extension("bin");
            let json = base.with_extension("json");
            if write && version == SCHEMA_VERSION && !bin.exists() {
                std::fs::write(&bin, encode(ev)).unwrap();
                std::fs::write(
                    &json,
                    serde_json::to_string_pretty(&jsonl::to_json(0, ev)).unwrap(),
                )
                .unwrap();
            }
            let bytes =
                std::fs::read(&bin).unwrap_or_else(|_| panic!("missing fixture {}", bin.display()));
            assert_eq!(
                u16::from_le_bytes([bytes[4], bytes[5]]),
                version,
                "{}",
                bin.display()
            );
            let (decoded, _) =
                decode_frame(&bytes).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            let exported = std::fs::read_to_string(&json).unwrap();
            let flat: serde_json::Value = serde_json::from_str(&exported).unwrap();
            let (_, expected) = jsonl::from_line(&flat.to_string()).unwrap().unwrap();
            assert_eq!(decoded, expected, "{}", bin.display());
            if version == SCHEMA_VERSION {
                assert_eq!(jsonl::to_json(0, &decoded), flat, "{}", bin.display());
                assert_eq!(encode(&decoded), bytes, "{}", bin.display());
            }
            kinds_seen.insert(decoded.kind());
        }
        assert_eq!(
            kinds_seen.len(),
            EventKind::ALL.len(),
            "version {version}: every kind needs a frozen fixture"
        );
    }
}

#[test]
fn version_1_requests_read_with_no_overrides() {
    let bytes = std::fs::read(fixture_dir(1).join("02-request_received.bin")).unwrap();
    let (ev, _) = decode_frame(&bytes).unwrap();
    let Event::RequestReceived(r) = ev else {
        panic!("not a request")
    };
    assert!(r.overrides.is_empty());
    assert_eq!(&*r.model, "production-llm");
    assert_eq!(
        r.prompt.as_deref(),
        Some("[{\"role\":\"user\",\"content\":\"hi\"}]")
    );
}

#[test]
fn corruption_is_detected() {
    let ev = &samples()[4];
    let good = encode(ev);
    for i in 4..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(decode_frame(&bad).is_err(), "flip at {i} went unnoticed");
    }
    for cut in 0..good.len() {
        assert!(matches!(
            decode_frame(&good[..cut]),
            Err(DecodeError::Truncated { .. }) | Err(DecodeError::BadMagic(_))
        ));
    }
    let mut newer = good.clone();
    newer[4] = 99;
    let crc = crc32fast::hash(&newer[4..newer.len() - 4]);
    let n = newer.len();
    newer[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_frame(&newer).unwrap_err(), DecodeError::TooNew(99));
}

#[test]
fn traces_round_trip_in_both_formats() {
    for format in [trace::TraceFormat::Binary, trace::TraceFormat::Jsonl] {
        let mut w = trace::TraceWriter::new(Vec::new(), format).unwrap();
        for (i, ev) in samples().iter().enumerate() {
            w.write(i as u64 + 1, ev).unwrap();
        }
        let bytes = w.finish().unwrap();
        let r = trace::TraceReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(r.format(), format);
        let back: Vec<(u64, Event)> = r.map(Result::unwrap).collect();
        assert_eq!(back.len(), samples().len());
        assert_eq!(
            back.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
            samples()
        );
    }
    assert!(trace::TraceReader::new(std::io::Cursor::new(b"hello".to_vec())).is_err());
}
