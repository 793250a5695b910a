//! What may trigger a reload from the file watcher, in two independent gates: the kind of a
//! notify event (only those that can change content: create, data or name changes, removal,
//! close after writing; never reads, opens or metadata changes), and a SHA-256 digest of what
//! each watched file holds, compared with what the last reload read. Reading a watched file —
//! `cat`, `resigner check`, a backup agent, or the reloader itself — therefore never reloads.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

/// Whether an event of this kind can change what a file holds.
pub fn can_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        // Unknown kinds (and a watcher's "rescan" overflow) may hide a change: the digests
        // decide.
        EventKind::Modify(_)
        | EventKind::Create(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

/// What one watched file held when it was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The file is not there (between a delete and its re-creation, for instance).
    Missing,
    /// It is there but could not be read; a reload says why.
    Unreadable(ErrorKind),
    /// SHA-256 of its content (through symlinks, as the loader reads it).
    Content([u8; 32]),
}

impl Seen {
    pub fn of(path: &Path) -> Seen {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut sum = [0; 32];
                sum.copy_from_slice(digest(&SHA256, &bytes).as_ref());
                Seen::Content(sum)
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Seen::Missing,
            Err(err) => Seen::Unreadable(err.kind()),
        }
    }
}

/// The state of every watched file at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, Seen>);

impl Snapshot {
    pub fn take(paths: &[PathBuf]) -> Snapshot {
        Snapshot(
            paths
                .iter()
                .map(|path| (path.clone(), Seen::of(path)))
                .collect(),
        )
    }

    /// The watched files that are not there.
    pub fn missing(&self) -> Vec<&Path> {
        self.0
            .iter()
            .filter(|(_, seen)| **seen == Seen::Missing)
            .map(|(path, _)| path.as_path())
            .collect()
    }

    /// This snapshot restricted to `paths`, with any path it lacks (a key file the reload
    /// just started watching) looked at now.
    pub fn covering(mut self, paths: &[PathBuf]) -> Snapshot {
        self.0.retain(|path, _| paths.contains(path));
        for path in paths {
            self.0.entry(path.clone()).or_insert_with(|| Seen::of(path));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn only_events_that_can_change_content_count() {
        let ignored = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Any),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
        ];
        for kind in ignored {
            assert!(!can_change_content(&kind), "{kind:?}");
        }
        let counted = [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ];
        for kind in counted {
            assert!(can_change_content(&kind), "{kind:?}");
        }
    }

    #[test]
    fn snapshots_follow_content_not_metadata() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a.toml");
        let paths = [file.clone()];
        std::fs::write(&file, "one").expect("write");
        let first = Snapshot::take(&paths);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(std::time::SystemTime::UNIX_EPOCH))
            .expect("touch");
        assert_eq!(Snapshot::take(&paths), first, "mtime alone is no change");
        std::fs::write(&file, "two").expect("write");
        assert_ne!(Snapshot::take(&paths), first);
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(Snapshot::take(&paths).missing(), [file.as_path()]);
    }

    #[test]
    fn covering_keeps_what_was_seen_and_adds_new_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (old, new) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
        std::fs::write(&old, "old").expect("write");
        std::fs::write(&new, "new").expect("write");
        let seen = Snapshot::take(std::slice::from_ref(&old));
        std::fs::write(&old, "changed since").expect("write");
        let covered = seen.clone().covering(&[old.clone(), new.clone()]);
        assert_eq!(
            covered.0[&old], seen.0[&old],
            "the digest read before the reload"
        );
        assert_eq!(covered.0[&new], Seen::of(&new));
        assert_eq!(covered.covering(std::slice::from_ref(&new)).0.len(), 1);
    }
}
