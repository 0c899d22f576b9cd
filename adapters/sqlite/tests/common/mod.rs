//! Fresh database files for the tests: each in this test binary's own directory under
//! cargo's target tmp dir, emptied when the binary starts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    sync::OnceLock,
};

use resident_auth_sqlite::{open, SqliteOptions, SqlitePool, SqliteStore};

static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// This binary's directory of database files, emptied on first use.
pub fn directory() -> &'static PathBuf {
    DIRECTORY.get_or_init(|| {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "tests".to_owned());
        let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sqlite-{binary}"));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    })
}

/// A path for a new database file.
pub fn new_path() -> PathBuf {
    directory().join(format!("{}.db", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// A new, migrated database.
pub async fn fresh_pool() -> SqlitePool {
    open(new_path(), &SqliteOptions::default()).await.unwrap()
}

/// A store on a fresh database: what the conformance suite runs on.
pub async fn fresh_store() -> SqliteStore {
    SqliteStore::new(fresh_pool().await)
}
