//! A child process brewq started: its output goes to a log file, it is stopped with SIGTERM
//! (then SIGKILL after a grace period), and it dies with its owner.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

/// Whether children start in a process group of their own; see [`own_process_groups`].
static OWN_GROUPS: AtomicBool = AtomicBool::new(false);

/// From now on, each child starts in a process group of its own. A terminal's Ctrl-C then
/// reaches only this process, which stops the children in order: the services first, while the
/// servers still run to take a machine's order back, then the servers. For a supervisor run
/// from a terminal (`brewq up`); a test run keeps its children in its own group, so that
/// interrupting it stops them as well.
pub fn own_process_groups() {
    OWN_GROUPS.store(true, Ordering::Relaxed);
}

/// A running child.
pub struct Process {
    /// A short name (`n1`, `maker-3`) for logs.
    pub name: String,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Process {
    /// Starts `program args...`, appending its stdout and stderr to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], envs: &[(String, String)], log: &Path) -> anyhow::Result<Process> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().context("duplicating a log handle")?)
            .stderr(file)
            .kill_on_drop(true);
        if OWN_GROUPS.load(Ordering::Relaxed) {
            command.process_group(0);
        }
        let child = command.spawn().with_context(|| format!("starting {} ({})", name, program.display()))?;
        Ok(Process { name: name.to_owned(), log: log.to_owned(), child })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True once the process has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else { return Ok(()) };
        let status = std::process::Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status().context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns whether it exited
    /// by itself, successfully (true for a process that was already gone).
    pub async fn stop(&mut self, grace: Duration) -> bool {
        if self.has_exited() {
            return true;
        }
        if self.signal("TERM").is_err() {
            self.kill().await;
            return false;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                tracing::warn!(process = self.name, "did not stop in time; killing it");
                self.kill().await;
                false
            }
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.wait().await.ok()
    }
}
