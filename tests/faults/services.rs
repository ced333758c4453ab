//! The engine's real binaries, run as child processes the fault suite can `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// One service process: how to start it, and the running child if any.
pub struct Service {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    pub fn new(
        name: &str,
        program: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> Self {
        Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts the process (its output appended to its log file); one still running is
    /// killed first, so two faults restarting it at once never leave one behind.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("open the service log")?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().context("log handle")?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("start {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no shutdown, no acknowledgement, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it is running; a process that exited on its own is an error of the run.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                self.child = None;
                bail!(
                    "{} exited by itself ({status}); see {}",
                    self.name,
                    self.log.display()
                )
            }
            Some(Err(error)) => bail!("{}: {error}", self.name),
            None => Ok(()),
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory of the running executable, where cargo puts every binary of the build.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("current executable")?;
    let dir = exe.parent().context("executable directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p referral-api -p referral-worker)",
            path.display()
        );
    }
    Ok(path)
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `url` answers 200, or `limit` passes.
pub async fn wait_ready(http: &reqwest::Client, url: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{url} did not answer within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
