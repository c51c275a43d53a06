//! Writing files so that nothing is ever half-written.
//!
//! Each file is written to a temporary file in the same directory, flushed
//! with `fsync`, then renamed over the target, and the directory is synced so
//! that the rename survives a crash. A reader sees the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Owner only (0600): private keys, the ledger's secrets.
    Private,
    /// Readable by all (0644): certificates, bundles, CRLs.
    Public,
}

impl FileMode {
    fn bits(self) -> u32 {
        match self {
            FileMode::Private => 0o600,
            FileMode::Public => 0o644,
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file written under a temporary name, not yet renamed into place.
#[derive(Debug)]
pub struct StagedFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl StagedFile {
    /// Writes `bytes` to a temporary file beside `target`, with `mode`, and
    /// syncs it. Nothing is visible at `target` until [`StagedFile::commit`].
    pub fn write(target: &Path, bytes: &[u8], mode: FileMode) -> Result<Self, Error> {
        let staged = Self::write_unsynced(target, bytes, mode)?;
        staged.sync()?;
        Ok(staged)
    }

    /// Like [`StagedFile::write`], but leaves the `fsync` to
    /// [`StagedFile::sync_all`], so that several files (and other work,
    /// such as a ledger commit) can wait for the disk at the same time. The
    /// errors a user can cause (a directory that is not writable, a full
    /// disk) already happen here.
    pub fn write_unsynced(target: &Path, bytes: &[u8], mode: FileMode) -> Result<Self, Error> {
        let dir = parent_dir(target);
        let mut builder = tempfile::Builder::new();
        builder.prefix(".minica-tmp-");
        #[cfg(unix)]
        builder.permissions(fs::Permissions::from_mode(mode.bits()));
        let mut temp = builder.tempfile_in(dir).map_err(|e| io_err(target, e))?;
        temp.write_all(bytes).map_err(|e| io_err(target, e))?;
        Ok(StagedFile {
            temp,
            target: target.to_path_buf(),
        })
    }

    fn sync(&self) -> Result<(), Error> {
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| io_err(&self.target, e))
    }

    /// Syncs every file, each on a thread of its own: the disk sees the
    /// flushes together (the filesystem journal can commit them at once)
    /// instead of one after the other. Returns the first failure.
    pub fn sync_all(files: &[StagedFile]) -> Result<(), Error> {
        std::thread::scope(|scope| {
            let syncs: Vec<_> = files
                .iter()
                .map(|file| (file, scope.spawn(|| file.sync())))
                .collect();
            syncs.into_iter().try_for_each(|(file, sync)| {
                sync.join().unwrap_or_else(|_| {
                    Err(io_err(
                        &file.target,
                        std::io::Error::other("the thread syncing this file panicked"),
                    ))
                })
            })
        })
    }

    /// Renames the temporary file over the target and syncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        let target = self.rename()?;
        sync_dir(parent_dir(&target)).map_err(|e| io_err(&target, e))
    }

    /// Renames every staged file over its target, in the order given, then
    /// syncs each directory once: one directory sync for a leaf's four
    /// files instead of four. For files that do not depend on each other's
    /// order after a crash (a leaf's `cert.pem`, `chain.pem`, `ca.pem` and
    /// `key.pem`, written after the ledger recorded the certificate): until
    /// it returns, a crash may keep any of the renames. Stops at the first
    /// failure; the files not yet renamed are removed.
    pub fn commit_all(files: Vec<StagedFile>) -> Result<(), Error> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for file in files {
            let target = file.rename()?;
            let dir = parent_dir(&target);
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
        dirs.iter()
            .try_for_each(|dir| sync_dir(dir).map_err(|e| io_err(dir, e)))
    }

    fn rename(self) -> Result<PathBuf, Error> {
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| io_err(&target, e.error))?;
        Ok(target)
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes one file atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), Error> {
    StagedFile::write(path, bytes, mode)?.commit()
}

/// Writes several files: all of them are staged (written and synced under
/// temporary names) first, then renamed into place in the order given. If
/// staging any file fails, no target is touched.
pub fn write_all_atomic(files: &[(&Path, &[u8], FileMode)]) -> Result<(), Error> {
    let staged = files
        .iter()
        .map(|(path, bytes, mode)| StagedFile::write(path, bytes, *mode))
        .collect::<Result<Vec<_>, _>>()?;
    staged.into_iter().try_for_each(StagedFile::commit)
}

/// Creates a directory (and its parents) readable by the owner only (0700),
/// or checks that an existing one is a directory.
pub fn create_private_dir(path: &Path) -> Result<(), Error> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).map_err(|e| io_err(path, e))
}

/// Creates a new file with `bytes` only if nothing exists at `path` yet
/// (`O_EXCL`), synced before returning. Used for lock and marker files.
pub fn create_new(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode.bits());
    let mut file = options.open(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    sync_dir(parent_dir(path)).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_the_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        write_atomic(&key, b"secret", FileMode::Private).unwrap();
        write_atomic(&key, b"secret2", FileMode::Private).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"secret2");
        #[cfg(unix)]
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
    }

    #[test]
    fn a_failed_stage_touches_no_target() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cert.pem");
        let bad = dir.path().join("missing-dir").join("key.pem");
        let err = write_all_atomic(&[
            (&good, b"c", FileMode::Public),
            (&bad, b"k", FileMode::Private),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
        assert!(!good.exists());
    }

    #[test]
    fn files_staged_unsynced_are_invisible_until_synced_and_committed() {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<_> = (0..4).map(|i| dir.path().join(format!("f{i}"))).collect();
        let staged: Vec<_> = targets
            .iter()
            .map(|t| StagedFile::write_unsynced(t, b"data", FileMode::Private).unwrap())
            .collect();
        assert!(targets.iter().all(|t| !t.exists()));
        StagedFile::sync_all(&staged).unwrap();
        StagedFile::commit_all(staged).unwrap();
        for t in &targets {
            assert_eq!(fs::read(t).unwrap(), b"data");
            #[cfg(unix)]
            assert_eq!(fs::metadata(t).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn staging_in_a_missing_directory_fails_naming_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("absent").join("cert.pem");
        let err = StagedFile::write_unsynced(&target, b"x", FileMode::Public).unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
    }

    #[test]
    fn commit_all_renames_every_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let staged = vec![
            StagedFile::write(&cert, b"c", FileMode::Public).unwrap(),
            StagedFile::write(&key, b"k", FileMode::Private).unwrap(),
        ];
        assert!(!cert.exists() && !key.exists());
        StagedFile::commit_all(staged).unwrap();
        assert_eq!(fs::read(&cert).unwrap(), b"c");
        assert_eq!(fs::read(&key).unwrap(), b"k");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn create_new_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        create_new(&p, b"1", FileMode::Private).unwrap();
        assert!(create_new(&p, b"2", FileMode::Private).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"1");
    }
}
