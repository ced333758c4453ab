//! A PostgreSQL cluster the fault suite owns, so it may crash it (`pg_ctl restart -m
//! immediate`) without touching anyone else's server.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A cluster in a directory of its own, on a port of its own, stopped and removed on drop.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bindir: PathBuf,
    /// PostgreSQL refuses to run as root: as root, its commands run as `postgres`.
    as_postgres: bool,
    /// Two faults may crash the server at once; `pg_ctl` must not run twice at a time.
    pg_ctl_turn: std::sync::Mutex<()>,
}

impl Cluster {
    /// Creates (`initdb`) and starts a cluster on `port`.
    pub fn start(port: u16) -> anyhow::Result<Self> {
        let bindir = bindir()?;
        let as_postgres = output(Command::new("id").arg("-u"))?.trim() == "0";
        let dir =
            std::env::temp_dir().join(format!("referral-faults-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).context("create the cluster directory")?;
        if as_postgres {
            output(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        let cluster = Self {
            dir,
            port,
            bindir,
            as_postgres,
            pg_ctl_turn: std::sync::Mutex::default(),
        };
        cluster.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ],
            true,
        )?;
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = '64MB'\n",
            cluster.dir.display()
        );
        let conf = cluster.dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).context("read postgresql.conf")?;
        text.push_str(&settings);
        std::fs::write(&conf, text).context("write postgresql.conf")?;
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        Ok(cluster)
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Kills every server process at once (no checkpoint, as a crash would) and starts
    /// the server again, which replays its write-ahead log.
    pub fn crash_and_restart(&self) -> anyhow::Result<()> {
        let _turn = self
            .pg_ctl_turn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.pg_ctl(&["restart", "-m", "immediate", "-w", "-t", "60"])
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let log = self.dir.join("server.log");
        let mut all: Vec<&str> = args.to_vec();
        let log = log.to_string_lossy().into_owned();
        all.extend(["-l", &log, "-D"]);
        self.run("pg_ctl", &all, true)
    }

    fn run(&self, program: &str, args: &[&str], with_dir: bool) -> anyhow::Result<()> {
        let path = self.bindir.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        command.args(args);
        if with_dir {
            command.arg(&self.dir);
        }
        output(command.current_dir(std::env::temp_dir()))
            .with_context(|| format!("{program} {}", args.join(" ")))?;
        Ok(())
    }

    /// The directory holding the cluster and its server log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the server's programs are: `pg_config --bindir`, else the newest of Debian's.
fn bindir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = output(Command::new("pg_config").arg("--bindir")) {
        let dir = PathBuf::from(dir.trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").exists());
    versions.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    match versions.pop() {
        Some(dir) => Ok(dir),
        None => bail!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install -y postgresql"
        ),
    }
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().context("start the command")?;
    if !out.status.success() {
        bail!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
