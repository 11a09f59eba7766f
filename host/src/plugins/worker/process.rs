//! One worker process seen from the host: start it, send a request, wait for its reply with a
//! deadline, and tell how it died when it does.

use std::{
    io::Read,
    os::{fd::AsRawFd, unix::process::ExitStatusExt},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::atomic::{AtomicU8, Ordering},
    time::{Duration, Instant},
};

use super::{
    protocol::{generate_frame, score_frame, write_frame, Reply, Request, MAX_FRAME},
    serve::PARENT_ENV,
    shared_media::{MediaRegion, MEDIA_FD_ENV},
};
use crate::{
    datasets::item::OwnedItem,
    plugins::{CallError, Completion, ContinuationScores, ItemFailure, ScoreRequest},
};

/// `-v` count the host runs with ([`QUIET`] for `-q`), passed on so the worker logs what the
/// host would have.
pub static WORKER_VERBOSITY: AtomicU8 = AtomicU8::new(0);

pub const QUIET: u8 = u8::MAX;

/// The binary started as the worker: this executable, unless a program embedding the library
/// (a benchmark) names the `karma-host` binary here first.
pub static WORKER_BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Why a worker stopped answering.
#[derive(Debug)]
pub enum Fault {
    Spawn(std::io::Error),
    /// Killed by a signal (SIGSEGV, SIGABRT, SIGKILL from the OOM killer, ...).
    Signalled(i32),
    /// Exited (plugin code calling `exit`, or an allocation failure reported as an exit).
    Exited(i32),
    TimedOut(Duration),
    /// A reply the host cannot read: the worker is not trusted any further.
    Broken(String),
}

impl Fault {
    /// The failure code recorded for a quarantined item.
    pub fn code(&self) -> &'static str {
        match self {
            Fault::Signalled(_) => "worker_crashed",
            Fault::Exited(_) => "worker_exited",
            Fault::TimedOut(_) => "worker_timeout",
            Fault::Spawn(_) | Fault::Broken(_) => "worker_broken",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Spawn(error) => write!(formatter, "could not be started ({error})"),
            Fault::Signalled(signal) => {
                write!(formatter, "was killed by signal {signal} ({})", signal_name(*signal))?;
                if *signal == libc::SIGKILL {
                    write!(formatter, "; the kernel's out-of-memory killer sends it")?;
                }
                Ok(())
            }
            Fault::Exited(code) => write!(formatter, "exited with status {code} in the middle of a call"),
            Fault::TimedOut(limit) => {
                write!(
                    formatter,
                    "ran past the {} s batch timeout (--batch-timeout) and was killed",
                    limit.as_secs_f64()
                )
            }
            Fault::Broken(problem) => write!(formatter, "sent a reply the host cannot read ({problem})"),
        }
    }
}

/// The usual name of a fatal signal.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "an uncommon signal",
    }
}

/// A reply of up to this size comes in one `read` (the worker writes it whole), header and body
/// together, into a buffer kept across calls.
const INBOX: usize = 64 * 1024;

/// A request frame's buffer is kept for the next batch up to this size.
const OUTBOX: usize = 1 << 20;

/// A running worker, its two pipes, and the shared region for large media.
pub struct WorkerProcess {
    child: Child,
    requests: Option<ChildStdin>,
    replies: ChildStdout,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// `None` when no memfd could be made: media then go through the pipe.
    media: Option<MediaRegion>,
}

impl WorkerProcess {
    pub fn spawn() -> std::io::Result<Self> {
        let binary = match WORKER_BINARY.get() {
            Some(binary) => binary.clone(),
            None => std::env::current_exe()?,
        };
        let mut command = Command::new(binary);
        if super::super::trust::is_required() {
            command.arg("--require-trusted");
        }
        command.arg("worker");
        match WORKER_VERBOSITY.load(Ordering::Relaxed) {
            QUIET => {
                command.arg("-q");
            }
            verbose => {
                command.args((0..verbose).map(|_| "-v"));
            }
        }
        let media = MediaRegion::create()
            .inspect_err(|error| {
                tracing::debug!("no shared memory for media ({error}); they go through the pipe")
            })
            .ok();
        if let Some(region) = &media {
            let fd = region.raw_fd();
            command.env(MEDIA_FD_ENV, fd.to_string());
            // SAFETY: the closure only calls fcntl, which is async-signal-safe, on a
            // descriptor this process holds open: the worker inherits this one region.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(requests), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("the worker was started without its pipes"));
        };
        Ok(WorkerProcess {
            child,
            requests: Some(requests),
            replies,
            inbox: vec![0; INBOX],
            outbox: Vec::with_capacity(4096),
            media,
        })
    }

    /// Sends `frame` and waits for the reply, or for the worker's death or the deadline.
    fn call(&mut self, frame: &[u8], timeout: Duration) -> Result<Reply, Fault> {
        let deadline = Instant::now() + timeout;
        let sent = self.requests.as_mut().map_or(Ok(()), |requests| write_frame(requests, frame));
        if sent.is_err() {
            // A closed pipe: the worker is gone; its exit status says how.
            return Err(self.death());
        }
        let mut inbox = std::mem::take(&mut self.inbox);
        let decoded = self.read_frame(&mut inbox, deadline, timeout).and_then(|(start, end)| {
            Reply::decode(&inbox[start..end]).map_err(|problem| self.abandon(Fault::Broken(problem)))
        });
        inbox.truncate(INBOX);
        inbox.shrink_to(INBOX);
        self.inbox = inbox;
        decoded
    }

    /// Reads one reply frame into `inbox` (grown past [`INBOX`] only for a larger frame) and
    /// returns where its body lies.
    fn read_frame(
        &mut self,
        inbox: &mut Vec<u8>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(usize, usize), Fault> {
        let filled = self.fill(&mut inbox[..INBOX], 8, deadline, timeout)?;
        let mut header = [0u8; 8];
        header.copy_from_slice(&inbox[..8]);
        let length = u64::from_le_bytes(header);
        if length > MAX_FRAME {
            return Err(self.abandon(Fault::Broken(format!("a frame of {length} bytes"))));
        }
        let end = 8 + length as usize;
        if filled > end {
            // The worker answers one request with one frame: more is not a reply to trust.
            return Err(self.abandon(Fault::Broken(format!("{} bytes after a reply", filled - end))));
        }
        if end > inbox.len() {
            inbox.resize(end, 0);
        }
        self.fill(&mut inbox[filled..end], end - filled, deadline, timeout)?;
        Ok((8, end))
    }

    /// Reads into `buffer` until at least `least` bytes are in; returns how many are.
    fn fill(
        &mut self,
        buffer: &mut [u8],
        least: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<usize, Fault> {
        let mut filled = 0;
        while filled < least {
            if !self.readable_before(deadline) {
                return Err(self.abandon(Fault::TimedOut(timeout)));
            }
            match self.replies.read(&mut buffer[filled..]) {
                Ok(0) => return Err(self.death()),
                Ok(read) => filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.death()),
            }
        }
        Ok(filled)
    }

    /// Waits until the reply pipe has bytes or is closed, or the deadline passes.
    fn readable_before(&self, deadline: Instant) -> bool {
        wait_readable(self.replies.as_raw_fd(), Some(deadline))
    }

    /// How the worker ended, once its pipe closed (waited for up to 5 s: the pipe closes as the
    /// process exits, so it is about to be reapable).
    fn death(&mut self) -> Fault {
        self.requests = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return match (status.signal(), status.code()) {
                        (Some(signal), _) => Fault::Signalled(signal),
                        (None, Some(code)) => Fault::Exited(code),
                        (None, None) => Fault::Broken("no exit status".to_owned()),
                    }
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Ok(None) => return self.abandon(Fault::Broken("closed its pipe without exiting".to_owned())),
                Err(error) => return Fault::Broken(format!("cannot wait for it: {error}")),
            }
        }
    }

    /// Kills the worker (it is not trusted after `fault`) and returns the fault.
    fn abandon(&mut self, fault: Fault) -> Fault {
        let _ = self.child.kill();
        let _ = self.child.wait();
        fault
    }

    /// A request answered by `Done` (create, load).
    pub fn done(&mut self, request: &Request, timeout: Duration) -> Result<Result<(), CallError>, Fault> {
        match self.call(&request.encode(), timeout)? {
            Reply::Done => Ok(Ok(())),
            Reply::Failed(message) => Ok(Err(CallError::Relayed(message))),
            other => Err(self.abandon(unexpected(&other))),
        }
    }

    /// A request answered by a flag.
    pub fn flag(&mut self, request: &Request, timeout: Duration) -> Result<Result<bool, CallError>, Fault> {
        match self.call(&request.encode(), timeout)? {
            Reply::Flag(flag) => Ok(Ok(flag)),
            Reply::Failed(message) => Ok(Err(CallError::Relayed(message))),
            other => Err(self.abandon(unexpected(&other))),
        }
    }

    /// Sends a frame built by `encode` into the kept request buffer, and keeps the buffer (and
    /// the media region, emptied if it grew large) for the next call.
    fn call_encoded(
        &mut self,
        encode: impl FnOnce(Vec<u8>, Option<&mut MediaRegion>) -> Vec<u8>,
        timeout: Duration,
    ) -> Result<Reply, Fault> {
        let frame = encode(std::mem::take(&mut self.outbox), self.media.as_mut());
        let reply = self.call(&frame, timeout);
        self.outbox = frame;
        self.outbox.truncate(OUTBOX);
        self.outbox.shrink_to(OUTBOX);
        if let Some(region) = &mut self.media {
            region.release_if_large();
        }
        reply
    }

    /// One generate call; the worker has already paired outputs by id, the count is checked.
    pub fn generate(
        &mut self,
        items: &[&OwnedItem],
        show_expected_output: bool,
        timeout: Duration,
    ) -> Result<Result<Vec<Result<Completion, ItemFailure>>, CallError>, Fault> {
        let encode = |buffer: Vec<u8>, region: Option<&mut MediaRegion>| {
            generate_frame(items, show_expected_output, region, buffer)
        };
        match self.call_encoded(encode, timeout)? {
            Reply::Generated(outputs) if outputs.len() == items.len() => Ok(Ok(outputs)),
            Reply::Failed(message) => Ok(Err(CallError::Relayed(message))),
            other => Err(self.abandon(unexpected(&other))),
        }
    }

    /// One scoring call, counts checked as in process.
    pub fn score(
        &mut self,
        requests: &[ScoreRequest<'_>],
        timeout: Duration,
    ) -> Result<Result<Vec<Result<ContinuationScores, ItemFailure>>, CallError>, Fault> {
        match self.call_encoded(|buffer, _| score_frame(requests, buffer), timeout)? {
            Reply::Scored(outputs) if outputs.len() == requests.len() => Ok(Ok(outputs)),
            Reply::Failed(message) => Ok(Err(CallError::Relayed(message))),
            other => Err(self.abandon(unexpected(&other))),
        }
    }
}

/// How long a side polls without sleeping before it blocks. Waking a process blocked on a pipe
/// costs tens of microseconds here (a virtual machine's idle cores); a fast model answers a
/// batch within that, and a slow one wastes at most this much CPU per batch.
const SPIN: Duration = Duration::from_micros(200);

/// Waits (with `poll`) until `fd` is readable or closed, or `deadline` passes (false then).
/// Polls without blocking for [`SPIN`] first.
pub(super) fn wait_readable(fd: std::os::fd::RawFd, deadline: Option<Instant>) -> bool {
    let spin_until = Instant::now() + SPIN;
    loop {
        let now = Instant::now();
        let left = deadline.map(|deadline| deadline.saturating_duration_since(now));
        if left.is_some_and(|left| left.is_zero()) {
            return false;
        }
        let millis = if now < spin_until {
            0
        } else {
            left.map_or(-1, |left| i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX))
        };
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for a descriptor this process holds open.
        match unsafe { libc::poll(&mut poll, 1, millis) } {
            ready if ready > 0 => return true,
            0 => std::hint::spin_loop(),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return true, // let the read report the error
        }
    }
}

fn unexpected(reply: &Reply) -> Fault {
    let shape = match reply {
        Reply::Done => "`done`".to_owned(),
        Reply::Flag(_) => "a flag".to_owned(),
        Reply::Failed(_) => "a failure".to_owned(),
        Reply::Generated(outputs) => format!("{} generated outputs", outputs.len()),
        Reply::Scored(outputs) => format!("{} scored outputs", outputs.len()),
    };
    Fault::Broken(format!("{shape} where another answer was due"))
}

impl Drop for WorkerProcess {
    /// Closing the request pipe ends the worker's loop (the plugin's instance is destroyed
    /// there); one that does not exit within a second is killed.
    fn drop(&mut self) {
        self.requests = None;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
