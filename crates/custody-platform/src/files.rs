//! Input files at the edge: paths confined to the workspace, and subjects resolved
//! from what the user wrote.

use std::path::{Path, PathBuf};

use custody_evidence::{ResourceDescriptor, SubjectSpec, sha256_reader};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: {source}")]
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

/// Resolves `path` (relative to `workspace` unless absolute) and refuses anything
/// whose real location, symlinks followed, is outside the workspace.
pub fn confine(workspace: &Path, path: &Path) -> Result<PathBuf, FileError> {
    let ws = workspace.canonicalize().map_err(|source| FileError::Io {
        path: workspace.to_path_buf(),
        source,
    })?;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        ws.join(path)
    };
    let real = joined.canonicalize().map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !real.starts_with(&ws) {
        return Err(FileError::OutsideWorkspace {
            path: path.to_path_buf(),
            workspace: ws,
        });
    }
    if !real.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(real)
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
    let path = match workspace {
        Some(ws) => confine(ws, Path::new(spec))?,
        None => PathBuf::from(spec),
    };
    let file = std::fs::File::open(&path).map_err(|e| FileError::Subject {
        spec: spec.to_owned(),
        reason: e.to_string(),
    })?;
    let (digest, _) = sha256_reader(file).map_err(|e| FileError::Subject {
        spec: spec.to_owned(),
        reason: e.to_string(),
    })?;
    let name = Path::new(spec)
        .file_name()
        .map_or_else(|| spec.to_owned(), |n| n.to_string_lossy().into_owned());
    Ok(ResourceDescriptor::sha256(name, &digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_escapes_by_dots_absolute_paths_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join("ok.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), ws.join("link")).unwrap();
        assert!(confine(&ws, Path::new("ok.json")).is_ok());
        for bad in ["../secret", "link"] {
            let e = confine(&ws, Path::new(bad)).unwrap_err();
            assert!(
                matches!(e, FileError::OutsideWorkspace { .. }),
                "{bad}: {e}"
            );
        }
        let abs = dir.path().join("secret");
        assert!(matches!(
            confine(&ws, &abs),
            Err(FileError::OutsideWorkspace { .. })
        ));
        assert!(matches!(
            confine(&ws, Path::new("missing.json")),
            Err(FileError::Io { .. })
        ));
        assert!(matches!(
            confine(&ws, Path::new(".")),
            Err(FileError::NotAFile { .. })
        ));
        assert_eq!(
            display_name(&ws, &ws.join("ok.json").canonicalize().unwrap()),
            "ok.json"
        );
    }
}
