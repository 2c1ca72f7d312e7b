//! The one-pass hasher: whole-file SHA-256 and BLAKE3, and a BLAKE3 per tensor, from a single
//! read of the file.
//!
//! SHA-256 of one stream is sequential and is the slowest of the three (about 1.7 GB/s with
//! SHA-NI, against 3.5-5 GB/s for BLAKE3 on one core), so it gets a thread of its own that does
//! nothing else. The calling thread reads the file into a small ring of reused buffers, hands
//! each filled buffer to the SHA-256 thread, and meanwhile feeds the same buffer to the
//! whole-file BLAKE3 and to the BLAKE3 of whichever tensors it covers. A buffer goes back into
//! the ring once both threads are done with it, so memory stays flat in the file size, and the
//! pass costs about what SHA-256 alone costs (see `docs/benchmarks.md`).
//!
//! The header is parsed from the first buffers as they go by, so there is no second read: the
//! buffers are copied into a growing prefix until [`crate::Gguf`] parses, which then says where
//! each tensor lies.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use provenance::digest::{Blake3Digest, Sha256Digest};
use sha2::Digest as _;

use crate::error::{HashError, ParseError};
use crate::identity::{ModelIdentity, Summary, TensorDigest, tensor_root};
use crate::reader::{Gguf, Limits, Stop, parse_prefix};

/// Computes [`ModelIdentity`] values. Configure, then call [`Hasher::hash_file`].
#[derive(Clone, Debug)]
pub struct Hasher {
    buffer_size: usize,
    buffers: usize,
    limits: Limits,
    parallel: bool,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// A hasher with the default buffer ring and [`Limits`].
    pub fn new() -> Self {
        Self {
            buffer_size: 1 << 20,
            buffers: 4,
            limits: Limits::default(),
            parallel: true,
        }
    }

    /// The size of each read buffer. 1 MiB by default; values below 4 KiB are raised to 4 KiB.
    pub fn buffer_size(&mut self, bytes: usize) -> &mut Self {
        self.buffer_size = bytes.max(4096);
        self
    }

    /// The number of buffers in the ring, which bounds how far reading runs ahead of SHA-256.
    /// 4 by default; values below 2 are raised to 2.
    pub fn buffers(&mut self, count: usize) -> &mut Self {
        self.buffers = count.max(2);
        self
    }

    /// Whether SHA-256 runs on a thread of its own. On by default. Off, everything runs on the
    /// calling thread, one buffer at a time: the pass then costs SHA-256 plus BLAKE3 twice,
    /// but spawns nothing (for embedding, and for fuzzing).
    pub fn parallel(&mut self, parallel: bool) -> &mut Self {
        self.parallel = parallel;
        self
    }

    /// The limits the header parser enforces. [`Limits::default`] by default.
    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// Hashes the GGUF file at `path`.
    pub fn hash_file(&self, path: &Path) -> Result<ModelIdentity, HashError> {
        self.hash_file_with_progress(path, |_, _| {})
    }

    /// Hashes the GGUF file at `path`, calling `progress(bytes_done, bytes_total)` after each
    /// buffer (on the calling thread).
    ///
    /// The file's length, modification time and inode are read before and after the pass; if
    /// they moved, or the file did not have the length it started with, the result is
    /// [`HashError::Changed`] rather than digests of a state the file was never in.
    pub fn hash_file_with_progress(
        &self,
        path: &Path,
        progress: impl FnMut(u64, u64),
    ) -> Result<ModelIdentity, HashError> {
        let io_error = |source| HashError::Io {
            path: path.to_owned(),
            source,
        };
        let file = open_regular(path).map_err(io_error)?;
        let before = file.metadata().map_err(io_error)?;
        if !before.is_file() {
            return Err(io_error(not_regular()));
        }
        let result = self.hash_stream(file, before.len(), progress);
        let after = std::fs::metadata(path).map_err(io_error)?;
        if !same_file_state(&before, &after) {
            return Err(HashError::Changed {
                path: path.to_owned(),
            });
        }
        result.map_err(|error| match error {
            StreamError::Io(source) => HashError::Io {
                path: path.to_owned(),
                source,
            },
            StreamError::Parse(source) => HashError::Parse {
                path: path.to_owned(),
                source,
            },
            StreamError::Length => HashError::Changed {
                path: path.to_owned(),
            },
        })
    }

    /// Hashes a GGUF file held in memory (through the same pipeline as files).
    pub fn hash_bytes(&self, file: &[u8]) -> Result<ModelIdentity, ParseError> {
        match self.hash_stream(file, file.len() as u64, |_, _| {}) {
            Ok(identity) => Ok(identity),
            Err(StreamError::Parse(error)) => Err(error),
            // Reading a slice cannot fail, and a slice is exactly as long as it says.
            Err(StreamError::Io(_) | StreamError::Length) => Err(ParseError::Truncated {
                offset: 0,
                needed: file.len() as u64,
                file_len: file.len() as u64,
            }),
        }
    }

    fn hash_stream<R: Read>(
        &self,
        reader: R,
        len: u64,
        progress: impl FnMut(u64, u64),
    ) -> Result<ModelIdentity, StreamError> {
        if !self.parallel {
            let mut side = InlineSha {
                sha: sha2::Sha256::new(),
                spare: None,
            };
            let (gguf, blake3) = self.pump(reader, len, progress, &mut side)?;
            let sha256 = Sha256Digest::from_bytes(side.sha.finalize().into());
            return Ok(identity(gguf, len, sha256, blake3));
        }
        thread::scope(|scope| {
            let (to_sha, sha_input) = mpsc::sync_channel::<Arc<Block>>(self.buffers);
            let (give_back, returned) = mpsc::channel::<Arc<Block>>();
            let sha = scope.spawn(move || {
                let mut sha = sha2::Sha256::new();
                for block in sha_input {
                    sha.update(block.bytes());
                    // The reader may have finished; then the buffer is simply dropped.
                    let _ = give_back.send(block);
                }
                Sha256Digest::from_bytes(sha.finalize().into())
            });
            let mut side = ThreadSha { to_sha, returned };
            let pumped = self.pump(reader, len, progress, &mut side);
            // Closing the channel ends the thread, also when pumping failed.
            drop(side);
            // A panic in the thread is a bug in sha2: propagate it.
            let sha256 = match sha.join() {
                Ok(digest) => digest,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            let (gguf, blake3) = pumped?;
            Ok(identity(gguf, len, sha256, blake3))
        })
    }

    /// Reads the stream into the buffer ring, handing each buffer to `sha` and feeding it to
    /// the BLAKE3 hashers on this thread.
    fn pump<R: Read>(
        &self,
        mut reader: R,
        len: u64,
        mut progress: impl FnMut(u64, u64),
        sha: &mut dyn ShaSide,
    ) -> Result<((Gguf, Vec<Blake3Digest>), blake3::Hash), StreamError> {
        let mut blake = blake3::Hasher::new();
        let mut tensors = TensorStream::new(&self.limits, len);
        let ring = if self.parallel { self.buffers } else { 1 };
        // A small file needs no buffer larger than itself.
        let buffer_size = self
            .buffer_size
            .min(usize::try_from(len).unwrap_or(usize::MAX).max(1));
        let mut allocated = 0;
        let mut pos = 0u64;
        while pos < len {
            let mut block = if allocated < ring {
                allocated += 1;
                Arc::new(Block::new(buffer_size))
            } else {
                sha.free_block()?
            };
            let Some(buffer) = Arc::get_mut(&mut block) else {
                // A buffer only comes back once the SHA-256 side has dropped its handle, and
                // this loop drops its own below; fail safe rather than write a shared buffer.
                return Err(StreamError::Length);
            };
            let want = (len - pos).min(buffer.data.len() as u64) as usize;
            buffer.len = fill(&mut reader, &mut buffer.data[..want])?;
            if buffer.len == 0 {
                return Err(StreamError::Length);
            }
            sha.submit(Arc::clone(&block))?;
            blake.update(block.bytes());
            tensors.feed(block.bytes(), pos)?;
            pos += block.len as u64;
            drop(block);
            progress(pos, len);
        }
        Ok((tensors.finish()?, blake.finalize()))
    }
}

/// Where the SHA-256 of the stream is computed.
trait ShaSide {
    /// Hashes `block`, or hands it to whoever does.
    fn submit(&mut self, block: Arc<Block>) -> Result<(), StreamError>;
    /// A buffer the SHA-256 side is done with, waiting for one if need be. Only called once
    /// the whole ring has been submitted.
    fn free_block(&mut self) -> Result<Arc<Block>, StreamError>;
}

/// SHA-256 on the calling thread, for [`Hasher::parallel`]`(false)`.
struct InlineSha {
    sha: sha2::Sha256,
    spare: Option<Arc<Block>>,
}

impl ShaSide for InlineSha {
    fn submit(&mut self, block: Arc<Block>) -> Result<(), StreamError> {
        self.sha.update(block.bytes());
        self.spare = Some(block);
        Ok(())
    }

    fn free_block(&mut self) -> Result<Arc<Block>, StreamError> {
        self.spare.take().ok_or(StreamError::Length)
    }
}

/// SHA-256 on its own thread, fed through a channel; buffers come back through another.
struct ThreadSha {
    to_sha: mpsc::SyncSender<Arc<Block>>,
    returned: mpsc::Receiver<Arc<Block>>,
}

impl ShaSide for ThreadSha {
    fn submit(&mut self, block: Arc<Block>) -> Result<(), StreamError> {
        self.to_sha.send(block).map_err(|_| StreamError::Length)
    }

    fn free_block(&mut self) -> Result<Arc<Block>, StreamError> {
        // The thread runs until `to_sha` is dropped, so a receive error means it died.
        self.returned.recv().map_err(|_| StreamError::Length)
    }
}

/// Hashes the GGUF file at `path` with the default [`Hasher`], without a cache.
pub fn digest_file(path: &Path) -> Result<ModelIdentity, HashError> {
    Hasher::new().hash_file(path)
}

fn identity(
    (gguf, digests): (Gguf, Vec<Blake3Digest>),
    len: u64,
    sha256: Sha256Digest,
    blake3: blake3::Hash,
) -> ModelIdentity {
    let tensors: Vec<TensorDigest> = gguf
        .tensors
        .iter()
        .zip(digests)
        .map(|(tensor, digest)| TensorDigest {
            name: tensor.name.clone(),
            ggml_type: tensor.ggml_type,
            shape: tensor.dims.clone(),
            offset: tensor.data_offset,
            size: tensor.n_bytes,
            blake3: digest,
        })
        .collect();
    ModelIdentity {
        size: len,
        sha256,
        blake3: Blake3Digest::from_bytes(*blake3.as_bytes()),
        tensor_root: tensor_root(&tensors),
        summary: Summary::from_gguf(&gguf),
        tensors,
    }
}

/// Whether two `stat`s of a path describe the same unchanged file.
pub(crate) fn same_file_state(before: &Metadata, after: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (
            before.dev(),
            before.ino(),
            before.ctime(),
            before.ctime_nsec(),
        ) != (after.dev(), after.ino(), after.ctime(), after.ctime_nsec())
        {
            return false;
        }
    }
    before.len() == after.len() && before.modified().ok() == after.modified().ok()
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, StreamError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Io(e)),
        }
    }
    Ok(filled)
}

#[derive(Debug)]
enum StreamError {
    Io(io::Error),
    Parse(ParseError),
    /// The stream ended before the length it was announced with (or a pipeline thread died).
    Length,
}

impl From<ParseError> for StreamError {
    fn from(error: ParseError) -> Self {
        Self::Parse(error)
    }
}

struct Block {
    data: Box<[u8]>,
    len: usize,
}

impl Block {
    fn new(size: usize) -> Self {
        Self {
            data: vec![0; size].into_boxed_slice(),
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// Per-tensor BLAKE3 over a stream: buffers the header until it parses, then hashes each
/// tensor's bytes as they go by, in offset order.
struct TensorStream<'a> {
    limits: &'a Limits,
    file_len: u64,
    state: State,
}

enum State {
    Header { prefix: Vec<u8>, next_try: usize },
    Data(Box<DataState>),
}

struct DataState {
    gguf: Gguf,
    /// Tensor indices sorted by data offset.
    order: Vec<usize>,
    /// Position in `order` of the tensor being hashed.
    current: usize,
    hasher: blake3::Hasher,
    digests: Vec<Option<Blake3Digest>>,
}

impl<'a> TensorStream<'a> {
    fn new(limits: &'a Limits, file_len: u64) -> Self {
        Self {
            limits,
            file_len,
            state: State::Header {
                prefix: Vec::new(),
                next_try: 1 << 20,
            },
        }
    }

    /// Feeds the bytes at `at..at + bytes.len()` of the file.
    fn feed(&mut self, bytes: &[u8], at: u64) -> Result<(), ParseError> {
        match &mut self.state {
            State::Data(data) => {
                data.feed(bytes, at);
                Ok(())
            }
            State::Header { prefix, next_try } => {
                prefix.extend_from_slice(bytes);
                let complete = prefix.len() as u64 >= self.file_len;
                if prefix.len() < *next_try && !complete {
                    return Ok(());
                }
                match parse_prefix(prefix, self.file_len, self.limits) {
                    Ok(gguf) => {
                        let mut data = Box::new(DataState::new(gguf));
                        data.feed(prefix, 0);
                        self.state = State::Data(data);
                        Ok(())
                    }
                    Err(Stop::Error(error)) => Err(error),
                    Err(Stop::NeedMore) if complete => Err(ParseError::Truncated {
                        offset: prefix.len() as u64,
                        needed: 1,
                        file_len: self.file_len,
                    }),
                    Err(Stop::NeedMore) => {
                        *next_try = prefix.len().saturating_mul(2);
                        Ok(())
                    }
                }
            }
        }
    }

    /// The header and the tensor digests, in tensor order, once the whole file went by.
    fn finish(self) -> Result<(Gguf, Vec<Blake3Digest>), ParseError> {
        match self.state {
            State::Data(data) => data.finish(),
            State::Header { prefix, .. } => {
                // The header never parsed in full: parse what there is for the precise error.
                match parse_prefix(&prefix, self.file_len, self.limits) {
                    Err(Stop::Error(error)) => Err(error),
                    Ok(_) | Err(Stop::NeedMore) => Err(ParseError::Truncated {
                        offset: prefix.len() as u64,
                        needed: 1,
                        file_len: self.file_len,
                    }),
                }
            }
        }
    }
}

impl DataState {
    fn new(gguf: Gguf) -> Self {
        let mut order: Vec<usize> = (0..gguf.tensors.len()).collect();
        order.sort_by_key(|&i| (gguf.tensors[i].data_offset, gguf.tensors[i].n_bytes));
        let digests = vec![None; gguf.tensors.len()];
        Self {
            gguf,
            order,
            current: 0,
            hasher: blake3::Hasher::new(),
            digests,
        }
    }

    fn feed(&mut self, bytes: &[u8], at: u64) {
        let end = at + bytes.len() as u64;
        while let Some(&index) = self.order.get(self.current) {
            let tensor = &self.gguf.tensors[index];
            let (start, stop) = (tensor.data_offset, tensor.data_offset + tensor.n_bytes);
            // Tensors are sorted and do not overlap, so everything of this tensor before `at`
            // has been fed already; `from >= at` keeps the slice in range.
            let from = start.max(at);
            let to = stop.min(end);
            if from < to {
                self.hasher
                    .update(&bytes[(from - at) as usize..(to - at) as usize]);
            }
            if stop > end {
                break;
            }
            self.digests[index] =
                Some(Blake3Digest::from_bytes(*self.hasher.finalize().as_bytes()));
            self.hasher.reset();
            self.current += 1;
        }
    }

    fn finish(self) -> Result<(Gguf, Vec<Blake3Digest>), ParseError> {
        let file_len = self.gguf.file_len;
        let mut digests = Vec::with_capacity(self.digests.len());
        for (digest, tensor) in self.digests.into_iter().zip(&self.gguf.tensors) {
            // The parser checked every tensor ends inside the file, and the whole file was
            // fed, so every digest is set; report a truncation rather than panic if not.
            let Some(digest) = digest else {
                return Err(ParseError::TensorOutOfBounds {
                    tensor: tensor.name.clone(),
                    start: tensor.data_offset,
                    end: tensor.data_offset + tensor.n_bytes,
                    file_len,
                });
            };
            digests.push(digest);
        }
        Ok((self.gguf, digests))
    }
}

/// Opens `path` for reading if it is a regular file (after symlinks), checked before the
/// open: opening a FIFO with no writer, or some devices, blocks forever.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    File::open(path)
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}
