//! Files the command line writes that hold a secret: a private key (signing key, TLS key,
//! the demo's key) is created new, never over an existing file, readable by its owner only
//! (mode 0600 on Unix) and synced before the command says it wrote it. Used by `keys
//! generate`, `certs dev` and `demo`. [`at`] names the file in an I/O error.
//!
//! May use: the standard library only.

use std::io::Write;
use std::path::Path;

/// Creates a private key file readable by the owner only; an existing file is an error.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// For `map_err`: an I/O error on `path` as `variant(path shown, error)`, e.g.
/// `.map_err(at(&path, MyError::Write))`.
pub fn at<E>(
    path: &Path,
    variant: fn(String, std::io::Error) -> E,
) -> impl FnOnce(std::io::Error) -> E {
    let shown = path.display().to_string();
    move |source| variant(shown, source)
}
