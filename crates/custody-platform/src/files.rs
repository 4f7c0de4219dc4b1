//! Input files at the edge: paths confined to the workspace, and subjects resolved
//! from what the user wrote.

use std::path::{Path, PathBuf};

use custody_evidence::{ResourceDescriptor, SubjectSpec, sha256_reader};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the path resolves outside the workspace {workspace}; evidence is read only from the job's workspace"
    )]
    OutsideWorkspace { path: PathBuf, workspace: PathBuf },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "--subject {spec}: not `name@sha256:…`, `sha256:…`, `git:<commit>`, nor a readable file ({reason})"
    )]
    Subject { spec: String, reason: String },
}

/// A workspace file, opened once: everything read from it (hashing, parsing, storing)
/// reads this descriptor, never the path again, so swapping a directory for a symlink
/// after the check changes nothing.
#[derive(Debug)]
pub struct ConfinedFile {
    pub file: std::fs::File,
    /// Where it is, below the workspace (canonical).
    pub real: PathBuf,
    pub size: u64,
}

impl ConfinedFile {
    /// A path that opens this very file again (`/proc/self/fd/N`, a link to the open
    /// descriptor, not to a name), for readers that take a path; valid while `self` is.
    pub fn reopen_path(&self) -> PathBuf {
        fd_path(&self.file)
    }
}

/// `/proc/self/fd/N`: a link to an open descriptor, not to a name.
fn fd_path(file: &std::fs::File) -> PathBuf {
    use std::os::fd::AsRawFd as _;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Opens `path` (relative to `workspace` unless absolute) without ever leaving the
/// workspace: `openat2` with `RESOLVE_BENEATH` resolves every component below it, so
/// `..`, an absolute symlink or a symlink out is refused by the kernel at the moment
/// of the open, whatever another process changes around it. Where `openat2` is
/// missing (Linux before 5.6, some seccomp profiles) the file is opened and the
/// descriptor's own path (`/proc/self/fd`) is checked instead, also after the open.
pub fn open_confined(workspace: &Path, path: &Path) -> Result<ConfinedFile, FileError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source: std::io::Error| FileError::Io { path: p, source }
    };
    let outside = || FileError::OutsideWorkspace {
        path: path.to_path_buf(),
        workspace: workspace.to_path_buf(),
    };
    let ws = workspace.canonicalize().map_err(io(workspace))?;
    let rel: PathBuf = if path.is_absolute() {
        match path.strip_prefix(&ws) {
            Ok(r) => r.to_path_buf(),
            // an absolute path through a symlinked workspace (`/tmp` → `/private/tmp`)
            Err(_) => match path.canonicalize() {
                Ok(c) => c.strip_prefix(&ws).map_err(|_| outside())?.to_path_buf(),
                Err(e) => return Err(io(path)(e)),
            },
        }
    } else {
        path.to_path_buf()
    };
    let dir = std::fs::File::open(&ws).map_err(io(&ws))?;
    // O_NONBLOCK: a FIFO planted in the workspace must not hang the open
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let file = match rustix::fs::openat2(
        &dir,
        &rel,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => std::fs::File::from(fd),
        Err(rustix::io::Errno::XDEV) => return Err(outside()),
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(ws.join(&rel))
            .map_err(io(path))?,
        Err(e) => return Err(io(path)(e.into())),
    };
    // the descriptor's own path: where the opened file is, not where a name points
    let real = std::fs::read_link(fd_path(&file)).unwrap_or_else(|_| ws.join(&rel));
    if !real.starts_with(&ws) {
        return Err(outside());
    }
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(ConfinedFile {
        file,
        real,
        size: meta.len(),
    })
}

/// `O_NONBLOCK` for `OpenOptions`.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
    }
}

/// The name a file is recorded under: its path relative to the workspace.
pub fn display_name(workspace: &Path, real: &Path) -> String {
    let ws = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf());
    real.strip_prefix(&ws).unwrap_or(real).display().to_string()
}

/// Resolves a subject spec; a path is hashed (confined to `workspace` when given).
pub fn resolve_subject(
    spec: &str,
    workspace: Option<&Path>,
) -> Result<ResourceDescriptor, FileError> {
    let parsed = SubjectSpec::parse(spec).map_err(|e| FileError::Subject {
        spec: spec.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(d) = parsed.descriptor() {
        return Ok(d);
    }
    let file = match workspace {
        Some(ws) => open_confined(ws, Path::new(spec))?.file,
        None => std::fs::File::open(spec).map_err(|e| FileError::Subject {
            spec: spec.to_owned(),
            reason: e.to_string(),
        })?,
    };
    let (digest, _) = sha256_reader(file).map_err(|e| FileError::Subject {
        spec: spec.to_owned(),
        reason: e.to_string(),
    })?;
    let name = Path::new(spec)
        .file_name()
        .map_or_else(|| spec.to_owned(), |n| n.to_string_lossy().into_owned());
    Ok(ResourceDescriptor::sha256(name, &digest))
}

/// Writes `bytes` to `path` as a whole or not at all: into a new file beside it, synced,
/// then renamed over `path`, so a reader (or a killed job) never sees half a document.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    // create_new: never follows a planted symlink nor reuses someone else's file
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    use std::io::Write as _;
    let done = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return done;
    }
    // the rename itself survives a crash once the directory is synced; best effort
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_whole_and_never_follows_a_planted_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decision.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        let e = write_atomically(&dir.path().join("missing/x.json"), b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(
            write_atomically(Path::new("/"), b"x").is_err(),
            "not a file name"
        );
    }

    #[test]
    fn open_confined_refuses_escapes_and_reads_the_opened_file() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("sub/ok.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), ws.join("out")).unwrap();
        std::os::unix::fs::symlink("../secret", ws.join("rel-out")).unwrap();
        std::os::unix::fs::symlink("sub/ok.json", ws.join("in")).unwrap();
        let f = open_confined(&ws, Path::new("sub/ok.json")).unwrap();
        assert_eq!(f.size, 2);
        assert!(f.real.ends_with("ws/sub/ok.json"), "{}", f.real.display());
        assert_eq!(std::fs::read(f.reopen_path()).unwrap(), b"{}");
        // a relative symlink that stays inside is followed
        let f = open_confined(&ws, Path::new("in")).unwrap();
        assert!(f.real.ends_with("sub/ok.json"));
        for bad in ["../secret", "out", "rel-out", "sub/../../secret"] {
            let e = open_confined(&ws, Path::new(bad)).unwrap_err();
            assert!(
                matches!(e, FileError::OutsideWorkspace { .. }),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            open_confined(&ws, &dir.path().join("secret")),
            Err(FileError::OutsideWorkspace { .. })
        ));
        assert!(matches!(
            open_confined(&ws, Path::new("sub")),
            Err(FileError::NotAFile { .. })
        ));
        // a FIFO does not hang the open
        let fifo = ws.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            open_confined(&ws, Path::new("fifo")),
            Err(FileError::NotAFile { .. })
        ));
        // the absolute path of a file inside works
        assert!(open_confined(&ws, &ws.join("sub/ok.json")).is_ok());
    }
}
