//! The demo's story: the proxy's config for the IdP and upstream just started, its signing
//! key (ES256, generated, written 0600 to a per-process temporary directory removed at the
//! end) imported into the key store before the proxy starts, a random admin token, and the
//! steps printed for the user to follow.
//!
//! May use: `config`, `service`, `keys` (the store), `jose` and the rest of `cli`.

use std::net::SocketAddr;
use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::idp::{DEMO_AUDIENCE, start_dev_idp};
use super::{DemoError, echo::start_echo_upstream, ports};
use crate::cli::admin_token::sha256_hex;
use crate::cli::files::write_private;
use crate::jose::alg::Alg;
use crate::jose::b64;
use crate::keys::{SigningKey, pem};

/// The demo's proxy config, signing with the key at `key_path`.
pub fn demo_config(
    proxy: u16,
    admin: u16,
    issuer: &str,
    upstream: SocketAddr,
    key_path: &Path,
    admin_token_sha256: &str,
) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{proxy}"

[admin]
listen = "127.0.0.1:{admin}"

[[admin.tokens]]
name = "demo"
sha256 = "{admin_token_sha256}"
scopes = ["read:custom_signing_keys", "create:custom_signing_keys", "update:custom_signing_keys", "delete:custom_signing_keys"]

[idp]
issuer = "{issuer}"
algorithms = ["RS256"]
require_typ = "at+jwt"

[signing]
issuer = "https://auth.demo.example/"
max_ttl = "5m"

[[signing.keys]]
path = "{key}"
alg = "ES256"

[[routes]]
prefix = "/api"
upstream = "http://{upstream}"
audience = "{DEMO_AUDIENCE}"
strip_prefix = true

[routes.claims]
audience = "legacy-orders"
rename = {{ "https://demo.local/roles" = "roles" }}
set = {{ tenant = "demo", legacy_level = 2 }}
remove = ["gty"]
"#,
        key = key_path.display().to_string().replace('\\', "/"),
    )
}

/// Runs the demo until Ctrl-C.
pub async fn run(port: u16) -> Result<(), DemoError> {
    ports::check(port)?;
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let (idp, idp_addr) = start_dev_idp((ip, port.wrapping_add(1)).into()).await?;
    let upstream = start_echo_upstream((ip, port.wrapping_add(2)).into()).await?;
    let dir = std::env::temp_dir().join(format!("resigner-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_path = dir.join("customer-es256.pem");
    let _ = std::fs::remove_file(&key_path);
    let der = SigningKey::generate_pkcs8(Alg::ES256).map_err(|e| DemoError::Key(e.to_string()))?;
    write_private(&key_path, &pem::encode(&der, "PRIVATE KEY"))?;
    let admin_token = random_token()?;
    let text = demo_config(
        port,
        port.wrapping_add(3),
        &idp.issuer,
        upstream,
        &key_path,
        &sha256_hex(&admin_token),
    );
    let config = crate::config::parse_config(&text, &dir)?;
    publish(&config).await?;
    let running = crate::service::start(config).await?;
    running.wait_ready(std::time::Duration::from_secs(10)).await;
    let proxy = running.public_addr;
    let kid = running.state.config().signing.active_kid.clone();
    println!(
        r#"
resigner demo is running.
  development IdP  http://{idp_addr}/   (issuer; RS256 key, kid in its JWKS)
  echo upstream    http://{upstream}/   (the "legacy API": echoes what it receives)
  proxy            http://{proxy}/      route /api -> echo upstream
  admin            http://{admin}/readyz

1. Get an access token from the IdP:
   TOKEN=$(curl -s -d grant_type=client_credentials http://{idp_addr}/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

2. Call the legacy API through the proxy:
   curl -s -H "Authorization: Bearer $TOKEN" http://{proxy}/api/orders?page=1
   Look for: "token_header" with "alg":"ES256" and "kid":"{kid}" (the customer key, not the
   IdP's), "token_claims" with "iss":"https://auth.demo.example/", "aud":"legacy-orders",
   "roles" (renamed), "tenant":"demo" and "legacy_level":2 (set), no "gty" (removed), and an
   "exp" at most 5 minutes away.

3. Fetch the aggregated JWKS that resource servers use to verify the re-signed token:
   curl -s http://{proxy}/.well-known/jwks.json
   Look for: the customer key "{kid}" first, then the IdP key.

4. See a rejection (RFC 6750):
   curl -si -H "Authorization: Bearer not.a.token" http://{proxy}/api/orders

5. The Auth0-compatible management API (admin listener) lists the imported customer keys:
   curl -s -H "Authorization: Bearer {admin_token}" http://{admin}/api/v2/keys/custom-signing

Press Ctrl-C to stop."#,
        admin = running.admin_addr,
    );
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown(std::time::Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Imports the demo's signing key into the custom key store before the proxy starts, as
/// `resigner keys import` would through the management API.
async fn publish(config: &crate::config::Config) -> Result<(), DemoError> {
    let store = crate::service::store::open(&config.keys)
        .await
        .map_err(|e| DemoError::Key(e.to_string()))?
        .store;
    let current = store
        .load()
        .await
        .map_err(|e| DemoError::Key(e.to_string()))?;
    let active = config
        .signing
        .active()
        .ok_or_else(|| DemoError::Key("the demo's signing key is not loaded".into()))?;
    let published_at = std::collections::BTreeMap::from([(
        active.kid().to_string(),
        crate::jose::time::now_unix(),
    )]);
    store
        .compare_and_set(
            current.version,
            vec![active.public_jwk().to_json()],
            published_at,
        )
        .await
        .map_err(|e| DemoError::Key(e.to_string()))?;
    Ok(())
}

fn random_token() -> Result<String, DemoError> {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DemoError::Key("no randomness".into()))?;
    Ok(b64::encode(bytes))
}
