//! Running mosquitto with the configuration `gateway init` wrote.
//!
//! The broker is a child process: started by [`Broker::start`], asked to stop with SIGTERM (so it
//! saves its retained messages) by [`Broker::stop`], and killed if the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::config::{GatewayConfig, GatewayPaths};

/// How long mosquitto may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long mosquitto may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Environment variable naming the mosquitto binary.
pub const MOSQUITTO_ENV: &str = "FWLEDGER_MOSQUITTO";

/// Why the broker could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// No mosquitto binary was found.
    #[error(
        "mosquitto not found (looked at ${MOSQUITTO_ENV}, PATH, /usr/sbin): install it \
         (`apt-get install mosquitto`) or pass --broker URL"
    )]
    NotFound,
    /// mosquitto exited during start-up.
    #[error("mosquitto exited ({status}) during start-up:\n{log}")]
    Exited {
        /// Exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// mosquitto did not accept connections in time.
    #[error("mosquitto did not accept connections on {addr} within {timeout:?}:\n{log}")]
    NotReady {
        /// The address waited on.
        addr: String,
        /// How long.
        timeout: Duration,
        /// The end of its log.
        log: String,
    },
    /// The process could not be started or stopped.
    #[error("mosquitto: {0}")]
    Io(#[from] std::io::Error),
}

/// Finds mosquitto: `explicit`, else `$FWLEDGER_MOSQUITTO`, else `PATH`, else `/usr/sbin`.
pub fn find_mosquitto(explicit: Option<&Path>) -> Result<PathBuf, BrokerError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(MOSQUITTO_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .ok_or(BrokerError::NotFound)
}

fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Where the gateway records the pid of the mosquitto it started.
fn pid_file(paths: &GatewayPaths) -> PathBuf {
    paths.mosquitto_dir().join("broker.pid")
}

/// The command line of a live process, NUL bytes as spaces (empty if gone or a zombie).
#[cfg(target_os = "linux")]
fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_string()
}

/// Stops every mosquitto left running by a gateway that was killed (it would hold the port):
/// only processes whose command line is mosquitto with this gateway's configuration. Besides the
/// recorded pid, every process is looked at, since a gateway killed between starting mosquitto
/// and recording its pid leaves an orphan that no pid file names.
#[cfg(target_os = "linux")]
async fn stop_stale(paths: &GatewayPaths) {
    let path = pid_file(paths);
    let conf = paths.mosquitto_conf().display().to_string();
    let ours = |pid: i32| {
        let line = cmdline(pid);
        line.contains("mosquitto") && line.contains(&conf)
    };
    let mut candidates: Vec<i32> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .into_iter()
        .collect();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        candidates.extend(
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()),
        );
    }
    candidates.sort_unstable();
    candidates.dedup();
    for raw in candidates.into_iter().filter(|pid| ours(*pid)) {
        let Some(pid) = rustix::process::Pid::from_raw(raw) else {
            continue;
        };
        for signal in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
            let _ = rustix::process::kill_process(pid, signal);
            let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
            while ours(raw) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !ours(raw) {
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(not(target_os = "linux"))]
async fn stop_stale(_paths: &GatewayPaths) {}

/// A running mosquitto.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    log: PathBuf,
    stderr: PathBuf,
    pid_file: PathBuf,
}

impl Broker {
    /// Starts `mosquitto -c HOME/gateway/mosquitto.conf` and waits until it accepts connections.
    pub async fn start(
        paths: &GatewayPaths,
        config: &GatewayConfig,
        program: Option<&Path>,
    ) -> Result<Broker, BrokerError> {
        let program = find_mosquitto(program)?;
        std::fs::create_dir_all(paths.mosquitto_dir())?;
        stop_stale(paths).await;
        let stderr_path = paths.mosquitto_dir().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path)?;
        let child = Command::new(&program)
            .arg("-c")
            .arg(paths.mosquitto_conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => BrokerError::NotFound,
                _ => BrokerError::Io(e),
            })?;
        let mut broker = Broker {
            child,
            log: paths.mosquitto_log(),
            stderr: stderr_path,
            pid_file: pid_file(paths),
        };
        if let Some(pid) = broker.child.id() {
            let _ = fwledger::write_atomic(&broker.pid_file, pid.to_string().as_bytes(), false);
        }
        let addr = match config.bind {
            ip if ip.is_unspecified() => {
                std::net::SocketAddr::from(([127, 0, 0, 1], config.mqtt_port))
            }
            ip => std::net::SocketAddr::new(ip, config.mqtt_port),
        };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            broker.check_running()?;
            let connect = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            )
            .await;
            if let Ok(Ok(stream)) = connect {
                drop(stream);
                // Something listens; make sure it is our mosquitto and not a stale process.
                tokio::time::sleep(Duration::from_millis(100)).await;
                broker.check_running()?;
                return Ok(broker);
            }
            if tokio::time::Instant::now() >= deadline {
                let log = broker.log_tail();
                broker.kill().await;
                return Err(BrokerError::NotReady {
                    addr: addr.to_string(),
                    timeout: START_TIMEOUT,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn check_running(&mut self) -> Result<(), BrokerError> {
        if let Some(status) = self.child.try_wait()? {
            return Err(BrokerError::Exited {
                status: status.to_string(),
                log: self.log_tail(),
            });
        }
        Ok(())
    }

    /// The end of mosquitto's log and standard error.
    pub fn log_tail(&self) -> String {
        format!("{}{}", tail(&self.log, 2048), tail(&self.stderr, 1024))
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the broker is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn kill(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await;
    }

    /// Stops the broker: SIGTERM (it saves retained messages), then SIGKILL after a timeout.
    pub async fn stop(mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
        #[cfg(unix)]
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
                && tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
                    .await
                    .is_ok()
            {
                return;
            }
        }
        self.kill().await;
    }
}
