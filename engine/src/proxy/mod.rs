//! The live proxy: an OpenAI-compatible HTTP server (axum on tokio) that drives the routing core
//! with the real clock and real upstream calls, and writes every event through the store.
//!
//! Start-up rebuilds the router's state by folding the log (from the last snapshot); the server
//! takes a listener and a shutdown future, so tests bind port 0.

pub mod auth;
pub mod handlers;
pub mod hub;
pub mod metrics;
pub mod request;
pub mod upstream;

use crate::config::{load_config, Config, Diagnostic, LoadOptions, Severity};
use crate::core::event::{ConfigApplied, Event, ProxyStarted};
use crate::core::router::Router;
use crate::core::state::{Snapshot, STATE_VERSION};
use crate::cost::PriceTable;
use crate::store::{Durability, OpenReport, Store, StoreOptions};
use axum::routing::{get, post};
use hub::{Clock, Hub};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct ProxyOptions {
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub prices: PriceTable,
    pub strict: bool,
    /// Seed of the request seeds (random when `None`; recorded in the log either way).
    pub seed: Option<u64>,
    pub queue_capacity: usize,
    /// What to do when the event log's writer falls behind.
    pub overflow: hub::Overflow,
    pub env: EnvLookup,
}

impl ProxyOptions {
    pub fn new(config_path: PathBuf, data_dir: PathBuf) -> ProxyOptions {
        ProxyOptions {
            config_path,
            data_dir,
            durability: Durability::Batched {
                interval: Duration::from_millis(100),
            },
            prices: PriceTable::builtin(),
            strict: false,
            seed: None,
            queue_capacity: 65_536,
            overflow: hub::Overflow::Wait,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}

/// What start-up found and did.
#[derive(Clone, Debug, Default)]
pub struct StartReport {
    pub open: OpenReport,
    pub snapshot_seq: Option<u64>,
    pub replayed_events: u64,
    pub replay_ms: u64,
    pub warnings: Vec<Diagnostic>,
}

pub struct App {
    pub hub: Hub,
    pub clock: Clock,
    pub client: upstream::HttpClient,
    pub master: RwLock<auth::MasterKey>,
    pub capacity: Arc<Notify>,
    pub shutting_down: AtomicBool,
    /// Streams still being forwarded (graceful shutdown waits for them).
    pub streams: AtomicUsize,
    pub opts: ProxyOptions,
    pub started: Instant,
}

/// Reads and validates the config file; every diagnostic on failure.
pub fn read_config(opts: &ProxyOptions) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let name = opts.config_path.display().to_string();
    let text = std::fs::read_to_string(&opts.config_path).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            file: name.clone(),
            line: 1,
            col: 1,
            path: String::new(),
            message: format!("cannot read the config file: {e}"),
        }]
    })?;
    let env = opts.env.clone();
    let lookup = move |k: &str| env(k);
    let loaded = load_config(
        &text,
        &LoadOptions {
            file_name: &name,
            strict: opts.strict,
            env: &lookup,
            prices: &opts.prices,
        },
    )?;
    Ok((loaded.config, loaded.warnings))
}

fn master_key(config: &Config, opts: &ProxyOptions) -> auth::MasterKey {
    let from_config = config.server.master_key.value().map(str::to_string);
    let from_env = (opts.env)("LITELLM_MASTER_KEY").or_else(|| (opts.env)("SWITCHYARD_MASTER_KEY"));
    auth::MasterKey::new(from_config.or(from_env).as_deref())
}

impl App {
    /// Loads the config, opens the log, rebuilds the state, and logs the start.
    pub fn start(opts: ProxyOptions) -> Result<(Arc<App>, StartReport), String> {
        let (config, warnings) = read_config(&opts).map_err(|d| render(&d))?;
        let store_opts = StoreOptions {
            durability: opts.durability,
            queue_capacity: opts.queue_capacity,
            ..StoreOptions::default()
        };
        std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}",
                opts.data_dir.display()
            )
        })?;
        let (store, open) = Store::open(&opts.data_dir, store_opts).map_err(|e| {
            format!(
                "{e} (is another switchyard process using {}?)",
                opts.data_dir.display()
            )
        })?;
        let store = Arc::new(store);
        let seed = opts.seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).expect("the OS random number generator is available");
            u64::from_le_bytes(b)
        });
        let config = Arc::new(config);
        let mut router = Router::new(Arc::new(config.routing.clone()), seed);
        let t = Instant::now();
        let mut from = 0;
        let mut snapshot_seq = None;
        if let Ok(Some((seq, bytes))) = store.load_snapshot(STATE_VERSION) {
            if let Ok(snap) = postcard::from_bytes::<Snapshot>(&bytes) {
                if router.restore(snap, &config.hash_hex) {
                    from = seq + 1;
                    snapshot_seq = Some(seq);
                }
            }
        }
        let mut replayed = 0;
        for item in store.scan(from) {
            let (_, ev) = item.map_err(|e| format!("rebuilding state from the event log: {e}"))?;
            router.apply(&ev);
            replayed += 1;
        }
        let replay_ms = t.elapsed().as_millis() as u64;
        let clock = Clock::new();
        let now = clock.now();
        let start_events = vec![
            Event::ProxyStarted(Box::new(ProxyStarted {
                at: now,
                version: env!("CARGO_PKG_VERSION").into(),
                next_request_id: router.next_request_id(),
            })),
            Event::ConfigApplied(Box::new(ConfigApplied {
                at: now,
                hash_hex: config.hash_hex.clone(),
                content: config.normalized_json().to_string(),
                seed,
            })),
        ];
        for e in &start_events {
            router.apply(e);
        }
        store
            .append_wait(&start_events)
            .map_err(|e| e.to_string())?;
        let capacity = Arc::new(Notify::new());
        let notify = capacity.clone();
        store.set_drained_hook(Arc::new(move || notify.notify_waiters()));
        let master = master_key(&config, &opts);
        let app = App {
            hub: Hub::new(router, config, store, clock, opts.overflow),
            clock,
            client: upstream::client(),
            master: RwLock::new(master),
            capacity,
            shutting_down: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            opts,
            started: Instant::now(),
        };
        Ok((
            Arc::new(app),
            StartReport {
                open,
                snapshot_seq,
                replayed_events: replayed,
                replay_ms,
                warnings,
            },
        ))
    }

    /// Re-reads the config file. A bad file leaves the running config in place.
    pub fn reload(&self) -> Result<(String, Vec<String>), Vec<String>> {
        let (config, warnings) = read_config(&self.opts)
            .map_err(|d| d.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
        let master = master_key(&config, &self.opts);
        let hash = config.hash_hex.clone();
        let config = Arc::new(config);
        let (_, ack) = self.hub.with(false, |c, now| {
            c.router.reconfigure(Arc::new(config.routing.clone()));
            c.config = config.clone();
            let ev = Event::ConfigApplied(Box::new(ConfigApplied {
                at: now,
                hash_hex: hash.clone(),
                content: config.normalized_json().to_string(),
                seed: c.router.seed(),
            }));
            c.router.apply(&ev);
            ((), vec![ev])
        });
        drop(ack);
        *self.master.write().unwrap_or_else(|e| e.into_inner()) = master;
        Ok((hash, warnings.iter().map(|w| w.to_string()).collect()))
    }
}

pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The HTTP routes.
pub fn routes(app: Arc<App>) -> axum::Router {
    use handlers::*;
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/openai/deployments/{model}/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health/liveliness", get(liveliness))
        .route("/health/liveness", get(liveliness))
        .route("/health/readiness", get(readiness))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/key/generate", post(key_generate))
        .route("/key/info", get(key_info))
        .route("/key/delete", post(key_delete))
        .route("/config/reload", post(config_reload))
        .route("/log/events", get(log_events))
        .fallback(not_found)
        .with_state(app)
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish within
/// the configured bound, and flushes the log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let grace = Duration::from_micros(app.hub.lock().config.server.graceful_shutdown.0);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app2 = app.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        app2.shutting_down.store(true, Ordering::Release);
        let _ = stop_tx.send(());
    });
    let server = axum::serve(listener, routes(app.clone())).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    let mut server = server;
    // Wait for shutdown to begin, then bound the drain.
    tokio::select! {
        r = &mut server => { let _ = r; }
        _ = async {
            while !app.shutting_down.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => {
            let deadline = tokio::time::Instant::now() + grace;
            let _ = tokio::time::timeout_at(deadline, &mut server).await;
            while app.streams.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    watcher.abort();
    let dropped = app.hub.dropped();
    if dropped.requests > 0 {
        tracing::warn!(
            requests = dropped.requests,
            events = dropped.events,
            "requests served but left out of the event log while it was behind (--log-overflow drop)"
        );
    }
    app.hub
        .store
        .close()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}
