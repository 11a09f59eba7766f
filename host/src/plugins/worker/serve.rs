//! The worker's side (`karma-host worker`, started by the host, never by hand): load one
//! plugin, create one instance, and answer requests on stdin until the host closes it.

use std::{
    os::fd::{FromRawFd, OwnedFd, RawFd},
    path::Path,
};

use super::{
    batch_frame::{shared_len, with_generate_view},
    protocol::{generated_frame, read_frame, write_frame, Reply, Request, GENERATE},
    shared_media::{inherited_fd, MediaMap},
};
use crate::plugins::{Backend, ModelInstance};

/// The environment variable carrying the host's pid (the worker exits if it is not its parent).
pub const PARENT_ENV: &str = "KARMA_WORKER_PARENT";

/// Serves requests until the host closes the pipe. The process's stdout is the reply channel;
/// fd 1 is then pointed at stderr so that plugin code printing to stdout cannot corrupt it.
pub fn serve() -> anyhow::Result<()> {
    detach_from_terminal_and_parent()?;
    let mut replies = std::io::BufWriter::new(take_stdout()?);
    // SAFETY: fd 0 is the request pipe the host made, owned from here on.
    let mut requests =
        std::io::BufReader::with_capacity(64 * 1024, std::fs::File::from(unsafe { OwnedFd::from_raw_fd(0) }));
    let mut instance: Option<ModelInstance> = None;
    let media_fd = inherited_fd();
    loop {
        if requests.buffer().is_empty() {
            super::process::wait_readable(0, None);
        }
        let Some(frame) = read_frame(&mut requests)? else { break };
        let reply = if frame.first() == Some(&GENERATE) {
            generate(&frame, media_fd, instance.as_mut())
        } else {
            match Request::decode(&frame) {
                Ok(request) => answer(request, &mut instance),
                Err(problem) => broken(&problem),
            }
        };
        write_frame(&mut replies, &reply)?;
    }
    Ok(())
}

fn broken(problem: &str) -> Vec<u8> {
    Reply::Failed(format!("the worker received a broken request: {problem}")).encode()
}

/// The encoded reply to a generate request: the batch is viewed in place in `frame` (and its
/// large media in the shared region, mapped for this batch only), and the reply encoded
/// straight from the plugin's outputs (the hot path has no intermediate strings).
fn generate(frame: &[u8], media_fd: Option<RawFd>, instance: Option<&mut ModelInstance>) -> Vec<u8> {
    let Some(instance) = instance else {
        return Reply::Failed("the worker holds no instance yet".to_owned()).encode();
    };
    let mapped = match (shared_len(frame), media_fd) {
        (Ok(0), _) => None,
        (Ok(len), Some(fd)) => match MediaMap::map(fd, len) {
            Ok(map) => Some(map),
            Err(problem) => return broken(&problem),
        },
        (Ok(_), None) => return broken("shared media, and the worker was given no region"),
        (Err(problem), _) => return broken(&problem),
    };
    let shared = mapped.as_ref().map_or(&[][..], MediaMap::bytes);
    let outputs = match with_generate_view(frame, shared, |view| instance.run(view)) {
        Ok(outputs) => outputs,
        Err(problem) => return broken(&problem),
    };
    match outputs.and_then(|outputs| Ok((outputs, instance.take_item_details()?))) {
        Ok((outputs, details)) => generated_frame(&outputs, &details),
        Err(error) => Reply::Failed(error.to_string()).encode(),
    }
}

/// The process's stdout as a file only the caller writes: fd 1 is then pointed at stderr, so
/// plugin code printing to stdout cannot corrupt what the host reads from this pipe.
pub(crate) fn take_stdout() -> anyhow::Result<std::fs::File> {
    // SAFETY: fd 1 is open (the host made it a pipe); `dup` gives a new descriptor owned here,
    // and `dup2` then repoints fd 1 without closing the duplicate.
    unsafe {
        let duplicate = libc::dup(1);
        anyhow::ensure!(duplicate >= 0, "cannot duplicate stdout: {}", std::io::Error::last_os_error());
        anyhow::ensure!(libc::dup2(2, 1) == 1, "cannot redirect stdout: {}", std::io::Error::last_os_error());
        Ok(std::fs::File::from(OwnedFd::from_raw_fd(duplicate)))
    }
}

/// The encoded reply to `request`.
fn answer(request: Request, instance: &mut Option<ModelInstance>) -> Vec<u8> {
    let failed = |error: &dyn std::fmt::Display| Reply::Failed(error.to_string());
    let reply = match (request, instance.as_mut()) {
        (Request::Create { plugin, model, config_json }, None) => {
            match create(Path::new(&plugin), &model, &config_json) {
                Ok(created) => {
                    *instance = Some(created);
                    Reply::Done
                }
                Err(message) => Reply::Failed(message),
            }
        }
        (Request::Create { .. }, Some(_)) => Reply::Failed("the worker already holds an instance".to_owned()),
        (_, None) => Reply::Failed("the worker holds no instance yet".to_owned()),
        (Request::Load, Some(instance)) => {
            instance.load().map_or_else(|error| failed(&error), |()| Reply::Done)
        }
        (Request::ScoresContinuations, Some(instance)) => {
            instance.scores_continuations().map_or_else(|error| failed(&error), Reply::Flag)
        }
        (Request::Score { requests }, Some(instance)) => {
            Backend::score_continuations(instance, &super::protocol::score_requests(&requests))
                .map_or_else(|error| failed(&error), Reply::Scored)
        }
    };
    reply.encode()
}

/// Loads the one plugin the host names (with the same checks as a scan) and creates `model`.
fn create(plugin: &Path, model: &str, config_json: &str) -> Result<ModelInstance, String> {
    let registered =
        crate::plugins::load_model(plugin, model).map_err(|problem| format!("the worker {problem}"))?;
    ModelInstance::create(&registered, config_json).map_err(|error| error.to_string())
}

/// Ctrl-C in the terminal reaches the whole process group; the host decides what it means (it
/// finishes the batch in flight), so the worker ignores it. The worker dies with the host.
fn detach_from_terminal_and_parent() -> anyhow::Result<()> {
    // SAFETY: setting a signal's disposition to SIG_IGN and PR_SET_PDEATHSIG take no pointers.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // The host may have died before PR_SET_PDEATHSIG took effect: then the parent is not it.
    let expected: Option<i32> = std::env::var(PARENT_ENV).ok().and_then(|pid| pid.parse().ok());
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    anyhow::ensure!(
        expected.is_some_and(|expected| expected == parent),
        "`karma-host worker` is started by karma-host itself (`eval --isolation worker`), not by hand"
    );
    if let Some(limit) = memory_limit() {
        let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
        // SAFETY: a valid rlimit struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
            tracing::warn!("cannot limit the worker's memory: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `KARMA_WORKER_MEMORY_LIMIT_MIB`: the worker's address-space limit, so that a model that
/// allocates without bound dies alone (and its item is quarantined) before the machine swaps.
fn memory_limit() -> Option<u64> {
    let value = std::env::var(crate::env_vars::WORKER_MEMORY_LIMIT_MIB).ok()?;
    match value.trim().parse::<u64>() {
        Ok(mib) if mib > 0 => Some(mib.saturating_mul(1 << 20)),
        _ => {
            tracing::warn!(
                "{} must be a whole number of MiB above 0, not `{value}`; no limit set",
                crate::env_vars::WORKER_MEMORY_LIMIT_MIB
            );
            None
        }
    }
}
