//! The real proxy, started in-process on 127.0.0.1:0 with its event log in a temp directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::proxy::{self, App, ProxyOptions};
use switchyard_engine::store::Durability;
use tokio::sync::oneshot;

pub struct Proxy {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub dir: Arc<tempfile::TempDir>,
    pub config_path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Opts {
    pub durability: Durability,
    pub env: Vec<(String, String)>,
    pub seed: u64,
    pub queue_capacity: Option<usize>,
    pub overflow: switchyard_engine::proxy::hub::Overflow,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            durability: Durability::Batched {
                interval: Duration::from_millis(20),
            },
            env: vec![],
            seed: 1,
            queue_capacity: None,
            overflow: Default::default(),
        }
    }
}

impl Proxy {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn start(config: &str, opts: Opts) -> Proxy {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Proxy::start_in(dir, config, opts).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, config: &str, opts: Opts) -> Proxy {
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut po = ProxyOptions::new(config_path.clone(), dir.path().join("data"));
        po.durability = opts.durability;
        po.seed = Some(opts.seed);
        if let Some(c) = opts.queue_capacity {
            po.queue_capacity = c;
        }
        po.overflow = opts.overflow;
        let env = opts.env.clone();
        po.env = Arc::new(move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
        let (app, _report) = App::start(po).unwrap_or_else(|e| panic!("proxy did not start: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(proxy::serve(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        Proxy {
            addr,
            app,
            dir,
            config_path,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful stop: waits for the server to finish and the log to flush.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        // Tasks that held the app (a finished stream's pump, the shutdown watcher) let go of it
        // asynchronously; the event log's directory stays locked until they have.
        for _ in 0..1000 {
            if Arc::strong_count(&self.app) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            Arc::strong_count(&self.app),
            1,
            "something still holds the proxy after shutdown"
        );
        self.dir.clone()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}
