//! Large media travel to the worker through shared memory instead of the pipe.
//!
//! Each worker gets a memfd at spawn (inherited, its number in [`MEDIA_FD_ENV`]). For a batch
//! the host writes every blob of at least [`SHARED_FROM`] bytes into it, once, and the request
//! frame carries the blob's offset and length in its place; the worker maps the used part read
//! only and the plugin's views point into that mapping. A 16 MiB image so costs one copy (into
//! the memfd) instead of three (into the frame, through the pipe, out of it).
//!
//! The host writes the region only while no call is in flight, and the worker unmaps it before
//! it replies, so neither side ever sees the other change bytes it is reading.

use std::{
    fs::File,
    os::{
        fd::{AsRawFd, FromRawFd, RawFd},
        unix::fs::FileExt,
    },
};

/// The environment variable carrying the memfd's descriptor number in the worker.
pub const MEDIA_FD_ENV: &str = "KARMA_WORKER_MEDIA_FD";

/// Blobs this large or larger go through the region. Below it the pipe is cheaper than the
/// `pwrite` and the worker's `mmap` (tens of microseconds for 64 KiB either way).
pub const SHARED_FROM: usize = 64 * 1024;

/// A region that grew past this is emptied after the call, so one batch of huge media does not
/// hold its memory for the rest of the run.
const KEEP: u64 = 64 << 20;

/// The host's side: the memfd, how much of it the batch being encoded uses, and how long the
/// file is (tracked here, so the hot path makes no `fstat`).
pub struct MediaRegion {
    file: File,
    used: u64,
    len: u64,
}

impl MediaRegion {
    /// A fresh, empty region, closed on exec (the spawn clears that for the one worker).
    pub fn create() -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: a NUL-terminated name and valid flags; the result is checked.
            let fd = unsafe { libc::memfd_create(c"karma-media".as_ptr(), libc::MFD_CLOEXEC) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a descriptor just created and owned by nothing else.
            Ok(MediaRegion { file: unsafe { File::from_raw_fd(fd) }, used: 0, len: 0 })
        }
        #[cfg(not(target_os = "linux"))]
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "memfd is Linux-only"))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Starts a new batch at offset 0.
    pub fn clear(&mut self) {
        self.used = 0;
    }

    /// Copies `data` in after what the batch already placed and returns its offset.
    pub fn place(&mut self, data: &[u8]) -> std::io::Result<u64> {
        let offset = self.used;
        let end = offset + data.len() as u64;
        // Counted before the write: a write that fails halfway may still have grown the file.
        self.len = self.len.max(end);
        self.file.write_all_at(data, offset)?;
        self.used = end;
        Ok(offset)
    }

    /// Bytes of the region the batch uses (what the worker maps).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Called after each call: frees the memory of a region that grew past [`KEEP`].
    pub fn release_if_large(&mut self) {
        if self.len > KEEP && self.file.set_len(0).is_ok() {
            self.len = 0;
        }
    }
}

/// The worker's descriptor of the region, when the host passed one.
pub fn inherited_fd() -> Option<RawFd> {
    std::env::var(MEDIA_FD_ENV).ok()?.parse().ok().filter(|fd| *fd > 2)
}

/// The worker's read-only view of the first `len` bytes of the region, for one batch.
pub struct MediaMap {
    address: *mut libc::c_void,
    len: usize,
}

impl MediaMap {
    /// Maps the first `len` bytes of `fd` (`len` > 0), refusing a region shorter than that (a
    /// mapping past the file's end would fault on access).
    pub fn map(fd: RawFd, len: u64) -> Result<Self, String> {
        let len = usize::try_from(len).map_err(|_| format!("a media region of {len} bytes"))?;
        // SAFETY: fstat writes into the zeroed struct; the descriptor's validity is checked.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } != 0 {
            return Err(format!("the media region cannot be read: {}", std::io::Error::last_os_error()));
        }
        if len == 0 || (stat.st_size as u64) < len as u64 {
            return Err(format!("the media region holds {} bytes, the request names {len}", stat.st_size));
        }
        #[cfg(target_os = "linux")]
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        #[cfg(not(target_os = "linux"))]
        let flags = libc::MAP_SHARED;
        // SAFETY: a fresh read-only mapping of a file at least `len` bytes long; checked below.
        let address = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, flags, fd, 0) };
        if address == libc::MAP_FAILED {
            return Err(format!("the media region cannot be mapped: {}", std::io::Error::last_os_error()));
        }
        Ok(MediaMap { address, len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes are mapped at `address` until drop, and the host does not
        // write them while the batch is in the worker (module docs).
        unsafe { std::slice::from_raw_parts(self.address.cast::<u8>(), self.len) }
    }
}

impl Drop for MediaMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_that_grew_large_is_emptied_and_a_small_one_kept() {
        let mut region = MediaRegion::create().unwrap();
        assert_eq!(region.place(&[1; 1000]).unwrap(), 0);
        assert_eq!(region.place(&[2; 24]).unwrap(), 1000);
        region.release_if_large();
        assert_eq!(region.file.metadata().unwrap().len(), 1024);
        region.clear();
        region.place(&vec![3; (KEEP + 1) as usize]).unwrap();
        region.release_if_large();
        assert_eq!(region.file.metadata().unwrap().len(), 0);
    }
}
