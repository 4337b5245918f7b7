//! The command lines as users run them: `switchyard check-config`, and `sim` on the shipped
//! sample data (determinism, the gate's exit codes, bad input).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .current_dir(root())
        .args(args)
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap()
}

fn sim(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_sim"), args)
}

fn sy(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_switchyard"), args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_config_accepts_the_seed_config() {
    for path in [
        "traces/litellm_config.yaml",
        "../shared/examples/litellm_config.yaml",
    ] {
        if !root().join(path).exists() {
            continue;
        }
        let o = sy(&["check-config", path]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("production-llm-fallback"), "{t}");
        assert!(
            t.contains("warning") && t.contains("ANTHROPIC_API_KEY"),
            "{t}"
        );
        let o = sy(&["check-config", path, "--strict"]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "--strict turns the warning into an error"
        );
    }
    for path in ["traces/current.yaml", "traces/candidate.yaml"] {
        let o = sy(&["check-config", path, "--strict"]);
        assert_eq!(o.status.code(), Some(0), "{path}: {}", text(&o));
    }
}

#[test]
fn bad_serve_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (flag, value, want) in [
        (
            "--log-overflow",
            "sometimes",
            "--log-overflow must be `wait` or `drop`",
        ),
        (
            "--durability",
            "maybe",
            "--durability must be `sync` or `batched`",
        ),
    ] {
        let o = sy(&[
            "--config",
            "traces/current.yaml",
            "--data",
            data.to_str().unwrap(),
            "--port",
            "0",
            flag,
            value,
        ]);
        assert_ne!(o.status.code(), Some(0));
        assert!(text(&o).contains(want), "{}", text(&o));
    }
}

#[test]
fn check_config_reports_mistakes_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      rpm: many\nrouter_settings:\n  num_retrys: 2\n").unwrap();
    let o = sy(&["check-config", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("bad.yaml:5:12: error: model_list[0].litellm_params.rpm"),
        "{t}"
    );
    assert!(t.contains("bad.yaml:7:3: warning: router_settings.num_retrys: unknown key; did you mean `num_retries`?"), "{t}");
}

#[test]
fn replay_is_deterministic_to_the_byte() {
    let a = sim(&[
        "replay",
        "traces/prod.log",
        "--config",
        "traces/candidate.yaml",
        "--json",
    ]);
    let b = sim(&[
        "replay",
        "traces/prod.log",
        "--config",
        "traces/candidate.yaml",
        "--json",
    ]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["summary"]["overall"]["requests"]["mean"], 3000.0);
    // Replaying the recorded config with its recorded outcomes reproduces what happened.
    let replayed = sim(&[
        "replay",
        "traces/prod.log",
        "--config",
        "traces/current.yaml",
        "--json",
    ]);
    let recorded = sim(&["report", "traces/prod.log", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    let o: serde_json::Value = serde_json::from_slice(&recorded.stdout).unwrap();
    assert_eq!(r["summary"]["overall"], o["summary"]["overall"]);
    assert_eq!(r["meta"]["sampled_outcomes"], 0);
}

#[test]
fn gate_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("gate.json");
    let json = json.to_str().unwrap();
    // Same config: within any budget.
    let o = sim(&[
        "gate",
        "--trace",
        "traces/prod.log",
        "--baseline",
        "traces/current.yaml",
        "--candidate",
        "traces/current.yaml",
        "--max-cost-increase",
        "0%",
        "--max-p99-increase",
        "0%",
        "--json",
        json,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| total cost |"));
    // The candidate costs more than 1 % over the baseline: a regression.
    let o = sim(&[
        "gate",
        "--trace",
        "traces/prod.log",
        "--baseline",
        "traces/current.yaml",
        "--candidate",
        "traces/candidate.yaml",
        "--max-cost-increase",
        "1%",
        "--json",
        json,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(v["gate"]["verdict"], "fail");
    // Bad input: exit 2.
    for args in [
        vec![
            "gate",
            "--trace",
            "traces/nope.log",
            "--baseline",
            "traces/current.yaml",
            "--candidate",
            "traces/candidate.yaml",
            "--max-cost-increase",
            "5%",
        ],
        vec![
            "gate",
            "--trace",
            "traces/prod.log",
            "--baseline",
            "traces/current.yaml",
            "--candidate",
            "traces/providers.yaml",
            "--max-cost-increase",
            "5%",
        ],
        vec![
            "gate",
            "--trace",
            "traces/current.yaml",
            "--baseline",
            "traces/current.yaml",
            "--candidate",
            "traces/candidate.yaml",
            "--max-cost-increase",
            "5%",
        ],
        vec![
            "gate",
            "--trace",
            "traces/prod.log",
            "--baseline",
            "traces/current.yaml",
            "--candidate",
            "traces/candidate.yaml",
        ],
        vec![
            "gate",
            "--trace",
            "traces/prod.log",
            "--baseline",
            "traces/current.yaml",
            "--candidate",
            "traces/candidate.yaml",
            "--max-cost-increase",
            "lots",
        ],
    ] {
        let o = sim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("error:"), "{}", text(&o));
    }
}

#[test]
fn a_config_without_the_traced_model_group_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("other.yaml");
    let yaml = std::fs::read_to_string(root().join("traces/current.yaml"))
        .unwrap()
        .replace("production-llm-fallback", "FB")
        .replace("production-llm", "renamed")
        .replace("FB", "production-llm-fallback");
    std::fs::write(&cfg, yaml).unwrap();
    let o = sim(&[
        "replay",
        "traces/prod.log",
        "--config",
        cfg.to_str().unwrap(),
        "--providers",
        "traces/providers.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("asks for model `production-llm`"),
        "{}",
        text(&o)
    );
}

#[test]
fn fit_import_synth_and_replay_with_providers() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let fitted = d("fitted.yaml");
    let o = sim(&["fit", "traces/prod.log", "-o", &fitted]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("vllm-llama-8b"), "{}", text(&o));
    let o = sim(&[
        "replay",
        "traces/prod.log",
        "--config",
        "traces/candidate.yaml",
        "--providers",
        &fitted,
        "--runs",
        "3",
        "--markdown",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| overall |"));
    // A public trace into a workload, replayed against the provider models.
    let csv =
        root().join("../shared/datasets/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv");
    let wl = d("azure.jsonl");
    if csv.exists() {
        let o = sim(&[
            "import",
            csv.to_str().unwrap(),
            "--model",
            "production-llm",
            "--limit",
            "500",
            "--speed",
            "4",
            "-o",
            &wl,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    } else {
        std::fs::copy(root().join("traces/workload.jsonl"), &wl).unwrap();
    }
    let html = d("report.html");
    let o = sim(&[
        "replay",
        &wl,
        "--config",
        "traces/current.yaml",
        "--providers",
        "traces/providers.yaml",
        "--html",
        &html,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!doctype html>")
            && page.contains("<svg")
            && page.contains("Traffic share over time")
    );
    // Without provider models a workload cannot be simulated.
    let o = sim(&["replay", &wl, "--config", "traces/current.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    // Synthetic workloads.
    let spec = d("spec.yaml");
    std::fs::write(&spec, "duration_s: 600\nseed: 2\narrivals: {process: bursty, rate_per_s: 2, burst_rate_per_s: 20, burst_mean_s: 10, calm_mean_s: 60}\ntokens_in: {lognormal: {median: 600, sigma: 1}}\nstream_share: 0.5\nmix: [{model: production-llm}]\n").unwrap();
    let syn = d("syn.jsonl");
    let o = sim(&["synth", "--workload", &spec, "-o", &syn]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = sim(&[
        "replay",
        &syn,
        "--config",
        "traces/candidate.yaml",
        "--providers",
        "traces/providers.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Garbage is not a trace.
    let junk = d("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let o = sim(&["report", &junk]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a switchyard trace"), "{}", text(&o));
    let _ = Path::new(".");
}
