//! Golden fixtures: every directory under `engine/tests/fixtures/anthropic` is one case; a test
//! walks them all. Inputs: `openai_request.json`, `anthropic_response.json` or
//! `anthropic_stream.txt`. Expected outputs beside them: `anthropic_request.json` (or
//! `error.txt`), `openai_response.json`, `openai_chunks.txt`. `UPDATE_GOLDEN=1` writes missing
//! expectations (review them before committing).

use super::*;
use crate::config::{Deployment, Prices, Protocol, Secret};
use crate::providers::sse::SseParser;
use std::path::{Path, PathBuf};

fn dep() -> Deployment {
    Deployment {
        id: "claude".into(),
        model_group: "g".into(),
        model: "anthropic/claude-3-5-sonnet-20241022".into(),
        provider: "anthropic".into(),
        protocol: Protocol::Anthropic,
        upstream_model: "claude-3-5-sonnet-20241022".into(),
        api_base: "https://api.anthropic.com".into(),
        api_key: Secret::Value("sk-ant-test".into()),
        rpm: None,
        tpm: None,
        timeout: None,
        stream_timeout: None,
        num_retries: None,
        weight_milli: None,
        order: None,
        tags: vec![],
        cooldown_time: None,
        prices: Prices::zero("test"),
        max_input_tokens: None,
        max_output_tokens: None,
        base_model: None,
        drop_params: None,
        extra_params: Default::default(),
        unusable: None,
    }
}

fn check(path: &Path, actual: &str) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    match std::fs::read_to_string(path) {
        Ok(expected) => assert_eq!(
            actual.trim_end(),
            expected.trim_end(),
            "golden mismatch: {}",
            path.display()
        ),
        Err(_) if update => std::fs::write(path, format!("{}\n", actual.trim_end())).unwrap(),
        Err(_) => panic!(
            "missing golden file {} (run with UPDATE_GOLDEN=1 and review it)",
            path.display()
        ),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[test]
fn golden_fixtures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected the golden cases under {}",
        root.display()
    );
    for case in cases {
        let req = case.join("openai_request.json");
        let resp = case.join("anthropic_response.json");
        let stream = case.join("anthropic_stream.txt");
        if req.exists() {
            let mut body: Map<String, Value> =
                serde_json::from_str(&std::fs::read_to_string(&req).unwrap()).unwrap();
            let drop = body
                .remove("drop_params")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let is_stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            match request(&dep(), &body, is_stream, drop) {
                Ok(out) => check(&case.join("anthropic_request.json"), &pretty(&out)),
                Err(e) => check(
                    &case.join("error.txt"),
                    &format!("{} {}: {}", e.status, e.kind, e.message),
                ),
            }
        } else if resp.exists() {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&resp).unwrap()).unwrap();
            let (out, usage) = response(&v, 1_700_000_000).unwrap();
            check(
                &case.join("openai_response.json"),
                &format!("{}\n// usage: {usage:?}", pretty(&out)),
            );
        } else if stream.exists() {
            let text = std::fs::read_to_string(&stream).unwrap();
            // Feed in awkward pieces: SSE lines split across reads must be reassembled.
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            for piece in text.as_bytes().chunks(7) {
                parser.push(piece, &mut events).unwrap();
            }
            parser.finish(&mut events);
            let json_mode = case.file_name().unwrap().to_string_lossy().contains("json");
            let mut st = StreamState::new(1_700_000_000, json_mode);
            let mut outs = Vec::new();
            for ev in &events {
                st.on_event(ev, &mut outs);
            }
            let mut rendered = String::new();
            for o in outs {
                rendered.push_str(&match o {
                    StreamOut::Chunk(c) => format!("chunk {c}\n"),
                    StreamOut::UsageChunk(c) => format!("usage {c}\n"),
                    StreamOut::Error { status, body } => {
                        format!("error {status} {}\n", String::from_utf8_lossy(&body))
                    }
                    StreamOut::Done => "done\n".into(),
                });
            }
            rendered.push_str(&format!(
                "// usage: {:?} content_chars={}\n",
                st.usage(),
                st.content_chars
            ));
            check(&case.join("openai_chunks.txt"), &rendered);
        } else {
            panic!("{}: no input file", case.display());
        }
    }
}
