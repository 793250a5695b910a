//! PKCS#11 modules, loaded and initialised once per process and path, and re-initialised
//! (`C_Finalize` + `C_Initialize`, which rescans slots and tokens) when a token cannot be
//! found. Each (re-)initialisation has a generation; a session belongs to one, and a session
//! of an older generation is forgotten, never closed (`C_Finalize` closed it, and its handle
//! may now name another session).
//!
//! May use: cryptoki.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;

use super::classify;
use crate::keys::signer::SignerError;

struct Module {
    ctx: Pkcs11,
    generation: u64,
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn initialize(ctx: &Pkcs11) -> Result<(), SignerError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(err) => Err(classify(&err)),
    }
}

/// The initialised context of the module at `path` and its generation.
pub fn context(path: &Path) -> Result<(Pkcs11, u64), SignerError> {
    let mut modules = modules().lock().map_err(|_| super::poisoned())?;
    if let Some(module) = modules.get(path) {
        return Ok((module.ctx.clone(), module.generation));
    }
    let ctx = Pkcs11::new(path).map_err(|err| {
        SignerError::Unavailable(format!(
            "cannot load PKCS#11 module {}: {err}",
            path.display()
        ))
    })?;
    initialize(&ctx)?;
    modules.insert(
        path.to_path_buf(),
        Module {
            ctx: ctx.clone(),
            generation: 1,
        },
    );
    Ok((ctx, 1))
}

/// Re-initialises the module at `path` unless someone already did since `seen`; returns the
/// context and the new generation.
pub fn reinitialize(path: &Path, seen: u64) -> Result<(Pkcs11, u64), SignerError> {
    let mut modules = modules().lock().map_err(|_| super::poisoned())?;
    let Some(module) = modules.get_mut(path) else {
        drop(modules);
        return context(path);
    };
    if module.generation == seen {
        tracing::info!(module = %path.display(), "re-initialising the PKCS#11 module");
        // Finalize takes a context by value; the library stays loaded through `module.ctx`.
        let _ = module.ctx.clone().finalize();
        module.generation += 1;
        initialize(&module.ctx)?;
    }
    Ok((module.ctx.clone(), module.generation))
}

/// The module's current generation (0 when it was never loaded).
pub fn generation(path: &Path) -> u64 {
    modules()
        .lock()
        .ok()
        .and_then(|modules| modules.get(path).map(|m| m.generation))
        .unwrap_or(0)
}

/// A session opened in one generation of one module: closed when dropped if that
/// generation is still current, else forgotten.
pub struct Pooled {
    session: Option<Session>,
    pub generation: u64,
    module: PathBuf,
}

impl Pooled {
    pub fn new(session: Session, generation: u64, module: &Path) -> Pooled {
        Pooled {
            session: Some(session),
            generation,
            module: module.to_path_buf(),
        }
    }

    pub fn session(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a pooled session is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && generation(&self.module) == self.generation
        {
            let _ = session.close();
        }
    }
}
