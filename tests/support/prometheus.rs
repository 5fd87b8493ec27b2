//! A real Prometheus server (Debian's `prometheus` package) scraping one
//! target every second, with its configuration and TSDB in a temporary
//! directory, on an ephemeral loopback port; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{forward, free_port, http_agent};

/// How long Prometheus may take to come up; bounds a hang, measures nothing.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Prometheus {
    child: Child,
    pub url: String,
    _root: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) at `/metrics`
    /// every second, with the admin token `bearer` if given.
    pub fn scraping(target: &str, bearer: Option<&str>) -> Self {
        let root = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let authorization = match bearer {
            Some(token) => {
                let token_file = root.path().join("token");
                std::fs::write(&token_file, token).expect("writing the token file");
                format!(
                    "    authorization:\n      type: Bearer\n      credentials_file: {}\n",
                    token_file.display()
                )
            }
            None => String::new(),
        };
        let config = root.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wasmengine\n{authorization}    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing the Prometheus config");
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                root.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus is not installed: run `make test`, which installs Debian's prometheus package");
        forward(child.stdout.take().unwrap(), "prometheus", None);
        forward(child.stderr.take().unwrap(), "prometheus", None);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(response) = http_agent().get(format!("{url}/-/ready")).call() {
                if response.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("prometheus exited early with {status}");
            }
            assert!(Instant::now() < deadline, "prometheus did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url,
            _root: root,
        }
    }

    /// Runs an instant query and returns its `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let mut response = http_agent()
            .get(format!("{}/api/v1/query", self.url))
            .query("query", promql)
            .call()
            .expect("querying prometheus");
        let body: serde_json::Value = serde_json::from_str(
            &response
                .body_mut()
                .read_to_string()
                .expect("prometheus answer"),
        )
        .expect("prometheus answers JSON");
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
