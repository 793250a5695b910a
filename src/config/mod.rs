//! Configuration: the TOML file shape (`file`), the validated runtime shape (`validate`), and
//! `load_config`, the one way from a path to a runtime [`Config`].

pub mod file;
pub mod validate;

use std::path::Path;

pub use validate::{
    CacheSettings, Config, IdpSettings, Route, ServerSettings, SigningSettings, UpstreamSettings,
    UpstreamTarget,
};

/// Why a configuration file could not become a running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

/// Reads, parses and validates the config file at `path`. Relative paths inside the file
/// (signing keys) are resolved against the file's own directory.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse_config(&text, base).map_err(|err| match err {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: shown.clone(),
            message,
        },
        ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
            path: shown.clone(),
            problems,
        },
        other => other,
    })
}

/// Parses and validates config text; `base` anchors relative file paths.
pub fn parse_config(text: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: file::FileConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: "<text>".into(),
        message: err.to_string().trim_end().replace('\n', "\n    "),
    })?;
    validate::validate(raw, base).map_err(|problems| ConfigError::Invalid {
        path: "<text>".into(),
        problems,
    })
}
