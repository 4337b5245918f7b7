//! `sim`: predict what a routing config does to cost and latency before it ships.
//!
//! Exit codes: 0 success (and, for `gate`, within budget), 1 the gate found a regression,
//! 2 bad input (a trace that is not one, an invalid config, a model group the config lacks, ...).

use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard_engine::config::{load_config, LoadOptions, RoutingConfig};
use switchyard_engine::core::router::Router;
use switchyard_engine::cost::PriceTable;
use switchyard_sim::engine::{run_many, RunOutput, SimError, SimSetup};
use switchyard_sim::gate::{self, Budget, Verdict};
use switchyard_sim::model::fit::Fitter;
use switchyard_sim::model::{parse as model_parse, ProviderSet};
use switchyard_sim::report::html::{page, Panel};
use switchyard_sim::report::render::{self, Meta};
use switchyard_sim::report::{summarize, RunBuilder, RunFigures, Summary};
use switchyard_sim::source::{self, Kind};
use switchyard_sim::workload::arrivals::WorkloadWriter;
use switchyard_sim::workload::import::{
    parse_azure_line, parse_jsonl_line, parse_mix, ImportOptions, Mapper,
};
use switchyard_sim::workload::synth::{parse_spec, Synth};

#[derive(Parser)]
#[command(
    name = "sim",
    version,
    about = "Switchyard's simulator: replay traffic against a candidate routing config and predict cost and latency."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Output {
    /// Print JSON instead of a text table.
    #[arg(long)]
    json: bool,
    /// Print Markdown instead of a text table.
    #[arg(long)]
    markdown: bool,
    /// Also write a self-contained HTML page with plots.
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Predict cost and latency of a config on a recorded trace or a workload.
    Replay {
        /// A trace (`switchyard log export`), an event-log directory, or a workload file.
        input: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Provider models; for a trace, they override the models fitted from it.
        #[arg(long)]
        providers: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Runs with seeds seed, seed+1, ...: figures get 95 % confidence intervals.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Sample every outcome from the provider models, even where the trace has it.
        #[arg(long)]
        no_reuse: bool,
        #[command(flatten)]
        out: Output,
    },
    /// What actually happened in a recorded trace, in the same format as a prediction.
    Report {
        input: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Fail when a candidate config costs more or is slower than the baseline beyond a budget.
    Gate {
        #[arg(long)]
        trace: PathBuf,
        #[arg(long)]
        baseline: PathBuf,
        #[arg(long)]
        candidate: PathBuf,
        #[arg(long)]
        providers: Option<PathBuf>,
        /// e.g. 5%.
        #[arg(long)]
        max_cost_increase: Option<String>,
        /// e.g. 10%.
        #[arg(long)]
        max_p99_increase: Option<String>,
        /// Percentage points, e.g. 0.5.
        #[arg(long)]
        max_error_rate_increase: Option<String>,
        #[arg(long, default_value_t = 1)]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the JSON result.
        #[arg(long, default_value = "switchyard-gate.json")]
        json: PathBuf,
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Fit a provider-model file from a recorded trace.
    Fit {
        input: PathBuf,
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
    /// Turn a public trace (Azure 2023 CSV, or JSON Lines with timestamp/input_length/output_length) into a workload.
    Import {
        input: PathBuf,
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Model groups (with weights, keys, tags): `production-llm:0.9,production-llm:0.1@team-a#vip`.
        #[arg(long)]
        model: String,
        /// `azure` or `jsonl` (detected from the file when omitted).
        #[arg(long)]
        format: Option<String>,
        /// Time compression: 2 replays an hour in 30 minutes.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Keep this share of requests (below 1) or repeat them (above 1).
        #[arg(long, default_value_t = 1.0)]
        rate_scale: f64,
        #[arg(long, default_value_t = 0.0)]
        stream_share: f64,
        #[arg(long)]
        max_tokens: Option<u64>,
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate a synthetic workload from a spec (Poisson, bursty, diurnal arrivals).
    Synth {
        #[arg(long)]
        workload: PathBuf,
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
    /// Serve provider models as fake OpenAI/Anthropic endpoints on 127.0.0.1, in real time.
    Mock {
        #[arg(long)]
        providers: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// First port (one per deployment); 0 picks free ports.
        #[arg(long, default_value_t = 0)]
        base_port: u16,
        /// Serve every deployment on this one port under /{deployment}/...
        #[arg(long)]
        single_port: Option<u16>,
    },
    /// Replay a workload's or trace's arrivals in real time against a live proxy.
    Drive {
        input: PathBuf,
        #[arg(long)]
        target: String,
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long, default_value_t = 10_000)]
        max_in_flight: usize,
    },
}

/// An error and the exit code it maps to.
struct Fail(i32, String);

fn bad(msg: impl Into<String>) -> Fail {
    Fail(2, msg.into())
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Replay {
            input,
            config,
            providers,
            seed,
            runs,
            no_reuse,
            out,
        } => replay(
            &input,
            &config,
            providers.as_deref(),
            seed,
            runs,
            !no_reuse,
            &out,
        ),
        Cmd::Report { input, out } => report(&input, &out),
        Cmd::Gate {
            trace,
            baseline,
            candidate,
            providers,
            max_cost_increase,
            max_p99_increase,
            max_error_rate_increase,
            runs,
            seed,
            json,
            html,
        } => gate_cmd(
            &trace,
            &baseline,
            &candidate,
            providers.as_deref(),
            max_cost_increase,
            max_p99_increase,
            max_error_rate_increase,
            runs,
            seed,
            &json,
            html.as_deref(),
        ),
        Cmd::Fit { input, out } => fit(&input, &out),
        Cmd::Import {
            input,
            out,
            model,
            format,
            speed,
            rate_scale,
            stream_share,
            max_tokens,
            limit,
            seed,
        } => import(
            &input,
            &out,
            &model,
            format.as_deref(),
            ImportOptions {
                mix: vec![],
                speed,
                rate_scale,
                stream_share,
                max_tokens,
                limit,
                seed,
            },
        ),
        Cmd::Synth { workload, out } => synth(&workload, &out),
        Cmd::Mock {
            providers,
            seed,
            host,
            base_port,
            single_port,
        } => mock(&providers, seed, &host, base_port, single_port),
        Cmd::Drive {
            input,
            target,
            speed,
            key,
            limit,
            max_in_flight,
        } => drive(&input, target, speed, key, limit, max_in_flight),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            std::process::exit(code);
        }
    }
}

fn load_routing(path: &Path) -> Result<RoutingConfig, Fail> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let prices = PriceTable::builtin();
    let env = |k: &str| std::env::var(k).ok();
    let name = path.display().to_string();
    match load_config(
        &text,
        &LoadOptions {
            file_name: &name,
            strict: false,
            env: &env,
            prices: &prices,
        },
    ) {
        Ok(l) => Ok(l.config.routing),
        Err(diags) => Err(bad(format!(
            "{name} is not a valid config:\n{}",
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ))),
    }
}

fn load_providers(path: &Path) -> Result<ProviderSet, Fail> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    model_parse::parse(&text, &path.display().to_string()).map_err(|errs| {
        bad(errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"))
    })
}

/// Provider models: fitted from the trace (if the input is one), overridden by `--providers`.
fn providers_for(input: &Path, explicit: Option<&Path>) -> Result<ProviderSet, Fail> {
    let kind = source::detect(input).map_err(bad)?;
    let mut set = ProviderSet::default();
    if kind != Kind::Workload {
        let mut fitter = Fitter::new();
        for ev in source::events(input).map_err(bad)? {
            fitter.observe(&ev.map_err(bad)?.1);
        }
        set = fitter.finish().0;
    }
    if let Some(p) = explicit {
        let e = load_providers(p)?;
        set.models.retain(|m| {
            !e.models
                .iter()
                .any(|x| x.name == m.name || x.matches.contains(&m.name))
        });
        set.models.extend(e.models);
        if e.default.is_some() {
            set.default = e.default;
        }
    } else if kind == Kind::Workload {
        return Err(bad(format!(
            "{}: a workload of arrivals has no recorded outcomes: pass --providers FILE",
            input.display()
        )));
    }
    Ok(set)
}

struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(label: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} {pos} requests ({per_sec}, {elapsed})",
            )
            .expect("valid template"),
        );
        pb.set_message(label.to_string());
        Progress(Some(pb))
    }

    fn set(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.set_position(n);
        }
    }

    fn done(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

fn simulate(
    input: &Path,
    routing: RoutingConfig,
    providers: ProviderSet,
    seed: u64,
    runs: usize,
    reuse: bool,
    label: &str,
) -> Result<Vec<RunOutput>, Fail> {
    let setup = SimSetup {
        routing: Arc::new(routing),
        providers,
        seed,
        reuse_recorded: reuse,
    };
    let progress = Progress::new(label);
    let outs = run_many(
        &setup,
        runs,
        || source::items(input).map_err(SimError::Workload),
        &mut |_, n| progress.set(n),
    );
    progress.done();
    outs.map_err(|e| bad(e.to_string()))
}

fn emit(meta: &Meta, summary: &Summary, plots: &RunBuilder, out: &Output) -> Result<(), Fail> {
    let text = if out.json {
        render::json(meta, summary)
    } else if out.markdown {
        render::markdown(meta, summary)
    } else {
        render::text(meta, summary)
    };
    print!("{text}");
    if let Some(h) = &out.html {
        let pd = plots.plot_data();
        let html = page(
            &meta.title,
            &[Panel {
                label: &meta.config,
                meta,
                summary,
                plots: &pd,
            }],
            None,
        );
        std::fs::write(h, html).map_err(|e| bad(format!("{}: {e}", h.display())))?;
        eprintln!("wrote {}", h.display());
    }
    Ok(())
}

fn replay(
    input: &Path,
    config: &Path,
    providers: Option<&Path>,
    seed: u64,
    runs: usize,
    reuse: bool,
    out: &Output,
) -> Result<i32, Fail> {
    let routing = load_routing(config)?;
    let set = providers_for(input, providers)?;
    let outs = simulate(input, routing, set, seed, runs, reuse, "simulating")?;
    let figs: Vec<RunFigures> = outs.iter().map(|o| o.report.figures()).collect();
    let summary = summarize(&figs);
    let meta = Meta {
        title: "Switchyard prediction".into(),
        config: config.display().to_string(),
        workload: input.display().to_string(),
        seed,
        runs: runs.max(1),
        reused_outcomes: outs.iter().map(|o| o.n_reused).sum(),
        sampled_outcomes: outs.iter().map(|o| o.n_sampled).sum(),
    };
    emit(&meta, &summary, &outs[0].report, out)?;
    Ok(0)
}

fn report(input: &Path, out: &Output) -> Result<i32, Fail> {
    if source::detect(input).map_err(bad)? == Kind::Workload {
        return Err(bad(format!(
            "{}: a workload of arrivals has no outcomes to report; use `sim replay`",
            input.display()
        )));
    }
    let mut b = RunBuilder::new();
    let mut router: Option<Router> = None;
    let mut n = 0u64;
    for ev in source::events(input).map_err(bad)? {
        let (_, ev) = ev.map_err(bad)?;
        n += 1;
        if let switchyard_engine::core::event::Event::ConfigApplied(c) = &ev {
            // Replay the recorded config's state to measure cooldown time as it happened.
            let parsed = serde_json::from_str::<serde_json::Value>(&c.content)
                .ok()
                .and_then(|v| v.get("routing").cloned())
                .and_then(|r| serde_json::from_value::<RoutingConfig>(r).ok());
            if let Some(cfg) = parsed {
                match router.as_mut() {
                    Some(r) => r.reconfigure(Arc::new(cfg)),
                    None => router = Some(Router::new(Arc::new(cfg), c.seed)),
                }
            }
        }
        b.on_event(&ev);
        if let Some(r) = router.as_mut() {
            if let switchyard_engine::core::event::Event::AttemptFinished(a) = &ev {
                let idx = r.config().deployment_index(&a.deployment);
                let before = idx.map(|i| r.state().deployments[i].cooldown_until);
                r.apply(&ev);
                if let (Some(i), Some(before)) = (idx, before) {
                    let after = r.state().deployments[i].cooldown_until;
                    if after > before {
                        b.on_cooldown(&a.deployment, after.0 - before.0.max(a.at.0));
                    }
                }
            } else {
                r.apply(&ev);
            }
        }
    }
    if n == 0 {
        return Err(bad(format!(
            "{}: the trace holds no events",
            input.display()
        )));
    }
    let summary = summarize(&[b.figures()]);
    let meta = Meta {
        title: "Switchyard report (recorded)".into(),
        config: "as recorded".into(),
        workload: input.display().to_string(),
        seed: 0,
        runs: 1,
        reused_outcomes: 0,
        sampled_outcomes: 0,
    };
    emit(&meta, &summary, &b, out)?;
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn gate_cmd(
    trace: &Path,
    baseline: &Path,
    candidate: &Path,
    providers: Option<&Path>,
    max_cost: Option<String>,
    max_p99: Option<String>,
    max_err: Option<String>,
    runs: usize,
    seed: u64,
    json_out: &Path,
    html: Option<&Path>,
) -> Result<i32, Fail> {
    let budget = Budget {
        max_cost_increase: max_cost
            .as_deref()
            .map(gate::parse_fraction)
            .transpose()
            .map_err(bad)?,
        max_p99_increase: max_p99
            .as_deref()
            .map(gate::parse_fraction)
            .transpose()
            .map_err(bad)?,
        max_error_rate_increase_pp: max_err
            .as_deref()
            .map(gate::parse_pp)
            .transpose()
            .map_err(bad)?,
    };
    if budget.max_cost_increase.is_none()
        && budget.max_p99_increase.is_none()
        && budget.max_error_rate_increase_pp.is_none()
    {
        return Err(bad("give at least one budget: --max-cost-increase, --max-p99-increase or --max-error-rate-increase"));
    }
    let base_cfg = load_routing(baseline)?;
    let cand_cfg = load_routing(candidate)?;
    let set = providers_for(trace, providers)?;
    let b = simulate(trace, base_cfg, set.clone(), seed, runs, true, "baseline")?;
    let c = simulate(trace, cand_cfg, set, seed, runs, true, "candidate")?;
    let bf: Vec<RunFigures> = b.iter().map(|o| o.report.figures()).collect();
    let cf: Vec<RunFigures> = c.iter().map(|o| o.report.figures()).collect();
    let result = gate::evaluate(&bf, &cf, &budget);
    let md = gate::markdown(
        &result,
        &baseline.display().to_string(),
        &candidate.display().to_string(),
    );
    print!("{md}");
    let bs = summarize(&bf);
    let cs = summarize(&cf);
    let json = serde_json::json!({"gate": result, "budget": budget, "baseline": {"config": baseline.display().to_string(), "summary": bs}, "candidate": {"config": candidate.display().to_string(), "summary": cs}, "trace": trace.display().to_string(), "runs": runs, "seed": seed});
    std::fs::write(
        json_out,
        serde_json::to_string_pretty(&json).expect("gate results serialize"),
    )
    .map_err(|e| bad(format!("{}: {e}", json_out.display())))?;
    if let Some(h) = html {
        let mk = |cfg: &Path, o: &[RunOutput]| Meta {
            title: "Switchyard gate".into(),
            config: cfg.display().to_string(),
            workload: trace.display().to_string(),
            seed,
            runs,
            reused_outcomes: o.iter().map(|x| x.n_reused).sum(),
            sampled_outcomes: o.iter().map(|x| x.n_sampled).sum(),
        };
        let (mb, mc) = (mk(baseline, &b), mk(candidate, &c));
        let (pb, pc) = (b[0].report.plot_data(), c[0].report.plot_data());
        let html_text = page(
            "Switchyard gate: baseline vs candidate",
            &[
                Panel {
                    label: "baseline",
                    meta: &mb,
                    summary: &bs,
                    plots: &pb,
                },
                Panel {
                    label: "candidate",
                    meta: &mc,
                    summary: &cs,
                    plots: &pc,
                },
            ],
            Some(&md),
        );
        std::fs::write(h, html_text).map_err(|e| bad(format!("{}: {e}", h.display())))?;
    }
    Ok(match result.verdict {
        Verdict::Fail => 1,
        _ => 0,
    })
}

fn fit(input: &Path, out: &Path) -> Result<i32, Fail> {
    let kind = source::detect(input).map_err(bad)?;
    if kind == Kind::Workload {
        return Err(bad(format!(
            "{}: a workload of arrivals has no outcomes to fit",
            input.display()
        )));
    }
    let mut fitter = Fitter::new();
    let mut n = 0;
    for ev in source::events(input).map_err(bad)? {
        fitter.observe(&ev.map_err(bad)?.1);
        n += 1;
    }
    let (set, notes) = fitter.finish();
    if set.models.is_empty() {
        return Err(bad(format!(
            "{}: no attempts in the trace ({n} events): nothing to fit",
            input.display()
        )));
    }
    let mut header = format!(
        "Provider models fitted by `sim fit` from {} ({n} events).\n",
        input.display()
    );
    for note in &notes {
        header.push_str(&format!("{note}\n"));
    }
    std::fs::write(out, model_parse::to_yaml(&set, &header))
        .map_err(|e| bad(format!("{}: {e}", out.display())))?;
    for note in &notes {
        eprintln!("{note}");
    }
    eprintln!("wrote {} model(s) to {}", set.models.len(), out.display());
    Ok(0)
}

fn import(
    input: &Path,
    out: &Path,
    mix: &str,
    format: Option<&str>,
    mut opts: ImportOptions,
) -> Result<i32, Fail> {
    opts.mix = parse_mix(mix).map_err(bad)?;
    let f = std::fs::File::open(input).map_err(|e| bad(format!("{}: {e}", input.display())))?;
    let mut lines = BufReader::new(f).lines().peekable();
    let first = lines
        .peek()
        .and_then(|l| l.as_ref().ok())
        .cloned()
        .unwrap_or_default();
    let format = match format {
        Some(f) => f.to_string(),
        None if first.starts_with("TIMESTAMP") || first.matches(',').count() == 2 => "azure".into(),
        None if first.trim_start().starts_with('{') => "jsonl".into(),
        None => {
            return Err(bad(format!(
                "{}: neither the Azure CSV layout nor JSON Lines; pass --format",
                input.display()
            )))
        }
    };
    let parse: fn(&str, u64) -> Result<Option<switchyard_sim::workload::import::Raw>, String> =
        match format.as_str() {
            "azure" | "csv" => parse_azure_line,
            "jsonl" | "mooncake" => parse_jsonl_line,
            other => return Err(bad(format!("--format `{other}`: expected azure or jsonl"))),
        };
    let file = std::fs::File::create(out).map_err(|e| bad(format!("{}: {e}", out.display())))?;
    let mut w = WorkloadWriter::new(
        BufWriter::new(file),
        &format!("{} ({format})", input.display()),
    )
    .map_err(|e| bad(e.to_string()))?;
    let mut mapper = Mapper::new(opts.clone());
    let mut prev: Option<switchyard_sim::workload::import::Raw> = None;
    let mut last_at = 0;
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| bad(format!("{}: {e}", input.display())))?;
        let Some(raw) =
            parse(&line, i as u64 + 1).map_err(|e| bad(format!("{}: {e}", input.display())))?
        else {
            continue;
        };
        if raw.at_us < last_at {
            return Err(bad(format!(
                "{}: line {}: timestamps go back in time",
                input.display(),
                i + 1
            )));
        }
        last_at = raw.at_us;
        if let Some(p) = prev.replace(raw) {
            for a in mapper.map(p, raw.at_us - p.at_us) {
                w.write(&a).map_err(|e| bad(e.to_string()))?;
            }
        }
        if opts.limit.is_some_and(|l| mapper.n >= l) {
            prev = None;
            break;
        }
    }
    if let Some(p) = prev {
        for a in mapper.map(p, 0) {
            w.write(&a).map_err(|e| bad(e.to_string()))?;
        }
    }
    let n = w.n;
    w.finish().map_err(|e| bad(e.to_string()))?;
    eprintln!("wrote {n} arrivals to {}", out.display());
    Ok(0)
}

fn synth(spec: &Path, out: &Path) -> Result<i32, Fail> {
    let text =
        std::fs::read_to_string(spec).map_err(|e| bad(format!("{}: {e}", spec.display())))?;
    let s = parse_spec(&text, &spec.display().to_string()).map_err(|e| bad(e.join("\n")))?;
    let file = std::fs::File::create(out).map_err(|e| bad(format!("{}: {e}", out.display())))?;
    let mut w = WorkloadWriter::new(
        BufWriter::new(file),
        &format!("synthetic from {}", spec.display()),
    )
    .map_err(|e| bad(e.to_string()))?;
    for a in Synth::new(s) {
        w.write(&a).map_err(|e| bad(e.to_string()))?;
    }
    let n = w.n;
    w.finish()
        .map_err(|e| bad(e.to_string()))?
        .flush()
        .map_err(|e| bad(e.to_string()))?;
    eprintln!("wrote {n} arrivals to {}", out.display());
    Ok(0)
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(format!("cannot start the async runtime: {e}")))
}

fn mock(
    providers: &Path,
    seed: u64,
    host: &str,
    base_port: u16,
    single_port: Option<u16>,
) -> Result<i32, Fail> {
    let set = load_providers(providers)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listening =
            switchyard_sim::mock::start(&set, seed, host, base_port, single_port, async move {
                let _ = rx.await;
            })
            .await
            .map_err(|e| bad(format!("cannot listen: {e}")))?;
        for l in &listening {
            println!(
                "{} ({:?}) listening: api_base {}",
                l.name, l.protocol, l.api_base
            );
        }
        let _ = std::io::stdout().flush();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| bad(e.to_string()))?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(());
        eprintln!("mock stopped");
        Ok(0)
    })
}

fn drive(
    input: &Path,
    target: String,
    speed: f64,
    key: Option<String>,
    limit: Option<u64>,
    max_in_flight: usize,
) -> Result<i32, Fail> {
    let items = source::items(input).map_err(bad)?;
    let rt = runtime()?;
    let progress = Progress::new("driving");
    let opts = switchyard_sim::drive::DriveOptions {
        target,
        speed,
        key,
        max_in_flight,
        limit,
    };
    let stats = rt
        .block_on(switchyard_sim::drive::drive(items, opts, |n| {
            progress.set(n)
        }))
        .map_err(bad)?;
    progress.done();
    use std::sync::atomic::Ordering::Relaxed;
    let sent = stats.sent.load(Relaxed);
    eprintln!(
        "sent {sent}: {} ok, {} failed, {} transport errors, mean latency {:.1} ms",
        stats.ok.load(Relaxed),
        stats.failed.load(Relaxed),
        stats.transport_errors.load(Relaxed),
        stats.total_latency_us.load(Relaxed) as f64 / sent.max(1) as f64 / 1000.0
    );
    Ok(0)
}
