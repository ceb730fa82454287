//! The signals `sidekey exec` passes on to its command: SIGINT, SIGTERM, SIGHUP and SIGQUIT.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Handlers for the forwarded signals, installed before the command starts.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
    quit: Signal,
}

/// A received signal, by name, for forwarding and the log.
#[derive(Debug, Clone, Copy)]
pub enum Received {
    Int,
    Term,
    Hup,
    Quit,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The next signal of the four.
    pub async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.int.recv() => Received::Int,
            _ = self.term.recv() => Received::Term,
            _ = self.hup.recv() => Received::Hup,
            _ = self.quit.recv() => Received::Quit,
        }
    }

    /// Waits for SIGTERM or SIGINT (`--env-only`); SIGHUP and SIGQUIT are ignored.
    pub async fn wait_stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Sends `signal` to the command's process.
pub fn forward(pid: u32, signal: Received) {
    use rustix::process::{Pid, Signal, kill_process};
    let sig = match signal {
        Received::Int => Signal::INT,
        Received::Term => Signal::TERM,
        Received::Hup => Signal::HUP,
        Received::Quit => Signal::QUIT,
    };
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    tracing::debug!(?signal, "forwarding a signal to the command");
    if let Err(e) = kill_process(pid, sig) {
        tracing::debug!(error = %e, "the command did not take the signal (it has ended)");
    }
}
