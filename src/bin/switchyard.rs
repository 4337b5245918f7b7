//! `switchyard`: the live proxy, config checking, and event-log tools.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::config::{load_config, LoadOptions, Severity};
use switchyard_engine::core::event::{Admission, Event, RequestResult};
use switchyard_engine::core::units::{InstantUs, PicoUsd};
use switchyard_engine::cost::PriceTable;
use switchyard_engine::events::human::{describe, parse_time};
use switchyard_engine::events::trace::{TraceFormat, TraceReader, TraceWriter};
use switchyard_engine::proxy::hub::Overflow;
use switchyard_engine::proxy::{self, App, ProxyOptions};
use switchyard_engine::store::{Durability, Store, StoreOptions};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM routing proxy that reads LiteLLM's config format, logs every decision, and predicts config changes."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Validate a config file: print the normalized config and every warning; exit 1 on errors.
    CheckConfig {
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// A price table in LiteLLM's model_prices_and_context_window.json format.
        #[arg(long)]
        prices: Option<PathBuf>,
        /// Print the normalized config as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Event-log tools.
    #[command(subcommand)]
    Log(LogCmd),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Config file in LiteLLM's format.
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 4000)]
    port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Directory of the event log.
    #[arg(long, default_value = "switchyard-data", env = "SWITCHYARD_DATA")]
    data: PathBuf,
    /// `sync`: a request's events are flushed before its response completes. `batched`: flushed
    /// every --flush-ms; a crash loses at most that window.
    #[arg(long, default_value = "batched")]
    durability: String,
    #[arg(long, default_value_t = 100)]
    flush_ms: u64,
    /// When the event log's writer falls behind: `wait` (new requests wait for it, up to 30 s,
    /// then 503; nothing is lost) or `drop` (requests go ahead and are left out of the log, whole;
    /// counted in /metrics and /health and reported in the proxy's log).
    #[arg(long, default_value = "wait")]
    log_overflow: String,
    /// Price table (LiteLLM's model_prices_and_context_window.json) added to the built-in one.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Seed of the per-request seeds (random by default; recorded in the log).
    #[arg(long)]
    seed: Option<u64>,
    /// Treat config warnings as errors.
    #[arg(long)]
    strict: bool,
}

#[derive(Subcommand)]
enum LogCmd {
    /// Write a portable trace file that `sim` reads (from a stopped proxy's data directory, or
    /// from a running proxy with --url).
    Export {
        #[arg(long, required_unless_present = "url")]
        data: Option<PathBuf>,
        /// A running proxy (`http://host:port`); needs its master key in --key or LITELLM_MASTER_KEY.
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "LITELLM_MASTER_KEY", hide_env_values = true)]
        key: Option<String>,
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Only events at or after this time (RFC 3339 or microseconds since the epoch).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "bin")]
        format: String,
    },
    /// Counts per event kind, time span, requests per model group and deployment, cost.
    Stats {
        /// A data directory or a trace file.
        source: PathBuf,
    },
    /// Events as human-readable lines, from a data directory, a trace file, or a running proxy
    /// (`http://host:port`, with its master key in --key or LITELLM_MASTER_KEY).
    Tail {
        source: String,
        /// Show the last N events.
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
        /// Keep printing new events as they are logged.
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(long, env = "LITELLM_MASTER_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Delete events that are exported and older than a bound (opt-in retention).
    Prune {
        #[arg(long)]
        data: PathBuf,
        /// e.g. 7d, 12h, 30m.
        #[arg(long)]
        older_than: String,
    },
    /// (testing) Append synthetic events as fast as possible and print each acknowledged seq.
    #[command(hide = true)]
    Stress {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "sync")]
        durability: String,
        #[arg(long, default_value_t = 100)]
        flush_ms: u64,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        #[arg(long, default_value_t = 4)]
        writers: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Serve(a)) => serve(a),
        None => serve(cli.serve),
        Some(Cmd::CheckConfig {
            file,
            strict,
            prices,
            json,
        }) => check_config(&file, strict, prices.as_deref(), json),
        Some(Cmd::Log(l)) => log(l),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn load_prices(path: Option<&Path>) -> Result<PriceTable> {
    let mut t = PriceTable::builtin();
    if let Some(p) = path {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("read price table {}", p.display()))?;
        t.merge(PriceTable::parse_json(&text).map_err(anyhow::Error::msg)?);
    }
    Ok(t)
}

fn durability(s: &str, flush_ms: u64) -> Result<Durability> {
    match Durability::parse(s, flush_ms) {
        Some(d) => Ok(d),
        None => bail!("--durability must be `sync` or `batched`, not `{s}`"),
    }
}

fn serve(a: ServeArgs) -> Result<i32> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let Some(config) = a.config.clone() else {
        bail!("--config FILE is required (a LiteLLM config, e.g. `switchyard --config litellm_config.yaml --port 4000`)");
    };
    let mut opts = ProxyOptions::new(config.clone(), a.data.clone());
    opts.durability = durability(&a.durability, a.flush_ms)?;
    opts.overflow = match Overflow::parse(&a.log_overflow) {
        Some(o) => o,
        None => bail!(
            "--log-overflow must be `wait` or `drop`, not `{}`",
            a.log_overflow
        ),
    };
    opts.prices = load_prices(a.prices.as_deref())?;
    opts.strict = a.strict;
    opts.seed = a.seed;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let (app, report) = App::start(opts).map_err(anyhow::Error::msg)?;
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
        if let Some(reason) = &report.open.quarantine_reason {
            tracing::error!(moved = report.open.quarantined_values, reason = %reason, "the event log had a corrupt tail; it was moved to quarantine and the valid prefix kept");
        }
        if !app.master.read().map(|m| m.is_set()).unwrap_or(false) {
            tracing::warn!("no master key (general_settings.master_key or LITELLM_MASTER_KEY): authentication is off");
        }
        tracing::info!(events = report.open.n_events, replayed = report.replayed_events, snapshot = ?report.snapshot_seq, ms = report.replay_ms, "state rebuilt from the event log");
        let addr = format!("{}:{}", a.host, a.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("listen on {addr}"))?;
        tracing::info!("switchyard listening on http://{} (config {}, event log {})", listener.local_addr()?, config.display(), a.data.display());
        trim_memory_periodically();
        let reload_app = app.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
                while hup.recv().await.is_some() {
                    match reload_app.reload() {
                        Ok((hash, warnings)) => {
                            for w in warnings {
                                tracing::warn!("{w}");
                            }
                            tracing::info!(config_hash = %hash, "config reloaded");
                        }
                        Err(diags) => tracing::error!("config reload refused; the running config stays:\n{}", diags.join("\n")),
                    }
                }
            }
        });
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing requests in flight, flushing the event log");
        };
        proxy::serve(listener, app, shutdown).await?;
        tracing::info!("stopped");
        Ok::<i32, anyhow::Error>(0)
    })
}

/// glibc's allocator keeps freed memory in its arenas; after a load peak (a burst of requests, a
/// thousand streams) the proxy would sit at its high-water mark. Trimming every few seconds hands
/// free pages back to the system.
fn trim_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::Builder::new()
        .name("switchyard-trim".into())
        .spawn(|| loop {
            std::thread::sleep(Duration::from_secs(5));
            // SAFETY: malloc_trim only returns free memory to the OS; it is safe to call at any
            // time from any thread.
            unsafe {
                libc::malloc_trim(0);
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::warn!(error = %e, "cannot start the memory trimmer"));
}

fn check_config(file: &Path, strict: bool, prices: Option<&Path>, json: bool) -> Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let prices = load_prices(prices)?;
    let env = |k: &str| std::env::var(k).ok();
    let name = file.display().to_string();
    match load_config(
        &text,
        &LoadOptions {
            file_name: &name,
            strict,
            env: &env,
            prices: &prices,
        },
    ) {
        Ok(loaded) => {
            let c = &loaded.config;
            if json {
                println!("{}", serde_json::to_string_pretty(&c.normalized_json())?);
            } else {
                let r = &c.routing;
                println!("config {} is valid (hash {})", name, &c.hash_hex[..16]);
                println!(
                    "routing_strategy: {:?}, num_retries: {}, timeout: {}, cooldown_time: {}",
                    r.strategy, r.num_retries, r.timeout, r.cooldown_time
                );
                for (g, ids) in &r.groups {
                    println!("model group {g}:");
                    for &i in ids {
                        let d = &r.deployments[i];
                        println!(
                            "  - {} {} via {} ({:?}) key={:?} prices in/out={}/{} per token [{}]{}{}{}",
                            d.id,
                            d.model,
                            d.api_base,
                            d.protocol,
                            d.api_key,
                            PicoUsd(d.prices.input_per_token.0),
                            PicoUsd(d.prices.output_per_token.0),
                            d.prices.source,
                            d.max_input_tokens.map(|m| format!(" max_input_tokens={m}")).unwrap_or_default(),
                            d.weight_milli.map(|w| format!(" weight={}", w as f64 / 1000.0)).unwrap_or_default(),
                            d.order.map(|o| format!(" order={o}")).unwrap_or_default()
                        );
                    }
                }
                for (name, map) in [
                    ("fallbacks", &r.fallbacks),
                    ("context_window_fallbacks", &r.context_window_fallbacks),
                    ("content_policy_fallbacks", &r.content_policy_fallbacks),
                ] {
                    for (g, list) in map {
                        println!("{name}: {g} -> {}", list.join(", "));
                    }
                }
                if !r.keys.is_empty() {
                    println!("virtual keys: {}", r.keys.len());
                }
            }
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok(0)
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let n = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            eprintln!("{n} error(s): config {name} is not valid");
            Ok(1)
        }
    }
}

/// Events of a data directory or a trace file, in order.
fn for_each_event(source: &Path, mut f: impl FnMut(u64, &Event)) -> Result<()> {
    if source.is_dir() {
        let (store, report) = Store::open(source, StoreOptions::default())
            .with_context(|| format!("open event log {}", source.display()))?;
        if let Some(r) = &report.quarantine_reason {
            eprintln!(
                "warning: the event log had a corrupt tail ({r}); {} value(s) quarantined",
                report.quarantined_values
            );
        }
        for item in store.scan(0) {
            let (seq, ev) = item?;
            f(seq, &ev);
        }
        store.close()?;
    } else {
        let file =
            std::fs::File::open(source).with_context(|| format!("open {}", source.display()))?;
        let reader = TraceReader::new(std::io::BufReader::new(file))
            .with_context(|| format!("read {}", source.display()))?;
        for item in reader {
            let (seq, ev) = item?;
            f(seq, &ev);
        }
    }
    Ok(())
}

fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration like 7d, 12h, 30m"))?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3600,
        "m" => n * 60,
        "s" | "" => n,
        _ => bail!("`{s}` is not a duration like 7d, 12h, 30m"),
    };
    Ok(Duration::from_secs(secs))
}

fn log(cmd: LogCmd) -> Result<i32> {
    match cmd {
        LogCmd::Export {
            data,
            url,
            key,
            out,
            from,
            to,
            format,
        } => {
            let format = match format.as_str() {
                "bin" | "binary" => TraceFormat::Binary,
                "jsonl" | "json" => TraceFormat::Jsonl,
                other => bail!("--format must be bin or jsonl, not `{other}`"),
            };
            let from = from
                .map(|s| parse_time(&s).with_context(|| format!("--from `{s}` is not a time")))
                .transpose()?;
            let to = to
                .map(|s| parse_time(&s).with_context(|| format!("--to `{s}` is not a time")))
                .transpose()?;
            let file =
                std::fs::File::create(&out).with_context(|| format!("create {}", out.display()))?;
            let mut w = TraceWriter::new(BufWriter::new(file), format)?;
            // Config and key events are always kept: a window of requests needs them to replay.
            let keep = |ev: &Event| {
                let structural = matches!(
                    ev,
                    Event::ConfigApplied(_)
                        | Event::KeyCreated(_)
                        | Event::KeyDeleted(_)
                        | Event::ProxyStarted(_)
                );
                let at = ev.at();
                structural || !(from.is_some_and(|f| at < f) || to.is_some_and(|t| at > t))
            };
            match (data, url) {
                (_, Some(u)) => {
                    let mut next = 1;
                    loop {
                        let page = fetch_events(&u, key.as_deref(), next, 10_000)?;
                        if page.is_empty() {
                            break;
                        }
                        for (seq, ev) in page {
                            next = seq + 1;
                            if keep(&ev) {
                                w.write(seq, &ev)?;
                            }
                        }
                    }
                }
                (Some(d), None) => {
                    let (store, _) = Store::open(&d, StoreOptions::default())
                        .with_context(|| format!("open event log {}", d.display()))?;
                    let mut last = 0;
                    for item in store.scan(0) {
                        let (seq, ev) = item?;
                        last = seq;
                        if keep(&ev) {
                            w.write(seq, &ev)?;
                        }
                    }
                    if from.is_none() && to.is_none() {
                        store.mark_exported(last)?;
                    }
                    store.close()?;
                }
                (None, None) => bail!("give --data DIR or --url URL"),
            }
            let n = w.n_events;
            w.finish()?.flush()?;
            eprintln!("wrote {n} events to {}", out.display());
            Ok(0)
        }
        LogCmd::Stats { source } => {
            let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut first: Option<InstantUs> = None;
            let mut last = InstantUs::ZERO;
            let mut groups: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut deps: BTreeMap<String, (u64, u64, PicoUsd)> = BTreeMap::new();
            let mut classes: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut total = PicoUsd::ZERO;
            let mut ok = 0u64;
            let mut failed = 0u64;
            for_each_event(&source, |_, ev| {
                *kinds.entry(ev.kind().name()).or_insert(0) += 1;
                first.get_or_insert(ev.at());
                last = last.max(ev.at());
                match ev {
                    Event::RequestReceived(r) => {
                        let g = match &r.admission {
                            Admission::Admitted { group, .. } => group.to_string(),
                            Admission::Rejected(_) => format!("{} (rejected)", r.model),
                        };
                        groups.entry(g).or_default().0 += 1;
                    }
                    Event::AttemptFinished(a) => {
                        let e =
                            deps.entry(a.deployment.to_string())
                                .or_insert((0, 0, PicoUsd::ZERO));
                        e.0 += 1;
                        if !a.class.is_success() {
                            e.1 += 1;
                        }
                        e.2 = e.2.saturating_add(a.cost);
                        *classes.entry(a.class.name()).or_insert(0) += 1;
                    }
                    Event::RequestFinished(f) => {
                        total = total.saturating_add(f.cost);
                        match f.result {
                            RequestResult::Ok => ok += 1,
                            RequestResult::Err(_) => failed += 1,
                        }
                    }
                    _ => {}
                }
            })?;
            let span = last.since(first.unwrap_or_default());
            println!("events by kind:");
            for (k, n) in &kinds {
                println!("  {k:<18} {n}");
            }
            if let Some(f) = first {
                println!(
                    "time span: {} .. {} ({})",
                    switchyard_engine::events::human::format_time(f),
                    switchyard_engine::events::human::format_time(last),
                    span
                );
            }
            println!("requests: {} finished ok, {} failed", ok, failed);
            println!("requests per model group:");
            for (g, (n, _)) in &groups {
                println!("  {g:<30} {n}");
            }
            println!("attempts per deployment (attempts, failed, cost):");
            for (d, (n, f, c)) in &deps {
                println!("  {d:<30} {n:>8} {f:>8} {c}");
            }
            println!("attempt outcomes:");
            for (c, n) in &classes {
                println!("  {c:<24} {n}");
            }
            println!("total cost: {total}");
            Ok(0)
        }
        LogCmd::Tail {
            source,
            n,
            follow,
            key,
        } => {
            if source.starts_with("http://") {
                return tail_url(&source, key.as_deref(), n, follow);
            }
            let source = PathBuf::from(source);
            let mut ring: std::collections::VecDeque<String> = std::collections::VecDeque::new();
            let mut last_seq = 0;
            for_each_event(&source, |seq, ev| {
                last_seq = seq;
                ring.push_back(describe(seq, ev));
                if ring.len() > n {
                    ring.pop_front();
                }
            })?;
            for l in &ring {
                println!("{l}");
            }
            if follow {
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let mut newer = Vec::new();
                    for_each_event(&source, |seq, ev| {
                        if seq > last_seq {
                            newer.push((seq, describe(seq, ev)));
                        }
                    })?;
                    for (seq, l) in newer {
                        last_seq = seq;
                        println!("{l}");
                    }
                }
            }
            Ok(0)
        }
        LogCmd::Prune { data, older_than } => {
            let age = parse_duration(&older_than)?;
            let (store, _) = Store::open(&data, StoreOptions::default())
                .with_context(|| format!("open event log {}", data.display()))?;
            let exported = store.exported_through()?;
            let snapshot = store.snapshot_seq()?.unwrap_or(0);
            let bound = exported.min(snapshot);
            if bound == 0 {
                bail!("nothing can be pruned: events must be exported (`switchyard log export` without --from/--to) and covered by a state snapshot first (exported through {exported}, snapshot at {snapshot})");
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_micros() as u64;
            let before = now.saturating_sub(age.as_micros() as u64);
            let removed = store.prune(bound, before)?;
            store.close()?;
            eprintln!("removed {removed} events (exported through seq {exported}, snapshot at seq {snapshot})");
            Ok(0)
        }
        LogCmd::Stress {
            data,
            durability: d,
            flush_ms,
            count,
            writers,
        } => stress(&data, durability(&d, flush_ms)?, count, writers),
    }
}

/// One page of events from a running proxy's `/log/events` (plain HTTP/1.1 on a socket: an
/// admin tool talking to the proxy on its own network).
fn fetch_events(
    url: &str,
    key: Option<&str>,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    use std::io::{Read, Write as _};
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (host, base) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, String::new()));
    let base = base.trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).with_context(|| format!("connect to {host}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {base}/log/events?from={from}&limit={limit} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("{url}/log/events answered {status}: {}", body.trim());
    }
    let mut out = Vec::new();
    for line in body.lines() {
        if let Some(x) =
            switchyard_engine::events::jsonl::from_line(line).map_err(|e| anyhow::anyhow!("{e}"))?
        {
            out.push(x);
        }
    }
    Ok(out)
}

fn tail_url(url: &str, key: Option<&str>, n: usize, follow: bool) -> Result<i32> {
    // Find the end, then show the last `n`.
    let mut from = 1u64;
    let mut ring: std::collections::VecDeque<(u64, Event)> = std::collections::VecDeque::new();
    loop {
        let page = fetch_events(url, key, from, 10_000)?;
        if page.is_empty() {
            break;
        }
        for (seq, ev) in page {
            from = seq + 1;
            ring.push_back((seq, ev));
            if ring.len() > n {
                ring.pop_front();
            }
        }
    }
    for (seq, ev) in &ring {
        println!("{}", describe(*seq, ev));
    }
    if follow {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            for (seq, ev) in fetch_events(url, key, from, 10_000)? {
                from = seq + 1;
                println!("{}", describe(seq, &ev));
            }
        }
    }
    Ok(0)
}

/// Appends synthetic events from several threads and prints `ack <seq> <unix_us>` for each
/// acknowledged append (the crash test kills this process and checks the log against the acks).
fn stress(data: &Path, durability: Durability, count: u64, writers: u64) -> Result<i32> {
    use switchyard_engine::core::event::KeyDeleted;
    let (store, _) = Store::open(
        data,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )?;
    let store = Arc::new(store);
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let per = count / writers.max(1);
    let handles: Vec<_> = (0..writers.max(1))
        .map(|w| {
            let store = store.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let ev = Event::KeyDeleted(Box::new(KeyDeleted {
                        at: InstantUs(w * 1_000_000_000 + i),
                        key_id: format!("w{w}-{i}"),
                    }));
                    match store.append_wait(&[ev]) {
                        Ok(seq) => {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map(|d| d.as_micros())
                                .unwrap_or(0);
                            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = writeln!(o, "ack {seq} {now}");
                            let _ = o.flush();
                        }
                        Err(e) => {
                            eprintln!("append failed: {e}");
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    store.close()?;
    Ok(0)
}
