//! Verification of the incoming IdP access token (RFC 7515 compact JWS, RFC 8725, RFC 9068).
//! Split so the IdP and key lookup can happen in between: [`parse`] checks structure and
//! header and reads the payload (whose `iss` selects the IdP), [`check_header`] checks the
//! header against that IdP, [`verify`] checks the signature with the chosen key and then the
//! claims.
//! jsonwebtoken's `decode` is not used here: it accepts duplicate claims, unknown `crit`,
//! `b64: false`, future `iat` and an array `iss`, which a re-signer must not.

use serde_json::{Map, Value};

use crate::config::IdpSettings;
use crate::jose::alg::Alg;
use crate::jose::b64;
use crate::jose::json::{self, JsonError};
use crate::keys::VerifyKey;

/// The largest incoming token accepted, in bytes ([`VerifyError::TooLarge`] beyond). A
/// verification limit, so it lives here; config does not need it.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was rejected. The text is the `error_description` sent to the client, so it
/// never contains token content; [`VerifyError::detail`] adds, for the log only, what a
/// compared member held and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token larger than the 16 KiB limit")]
    TooLarge,
    #[error("token is not a compact JWS (three base64url segments)")]
    Structure,
    #[error("token {0} is not base64url without padding")]
    Base64(&'static str),
    #[error("token {0} is not a JSON object")]
    Json(&'static str),
    #[error("token {0} repeats member {1:?}")]
    Duplicate(&'static str, String),
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    #[error("unsupported critical header parameter")]
    Crit,
    #[error("unencoded payload (b64) is not supported")]
    B64,
    #[error("nested tokens are not accepted")]
    Nested,
    #[error("embedded key header {0:?} is not accepted")]
    EmbeddedKey(&'static str),
    #[error("header member {0:?} has the wrong type")]
    HeaderType(&'static str),
    #[error("token type not accepted")]
    Typ(Box<Mismatch>),
    #[error("no key with this kid")]
    UnknownKid,
    #[error("token has no kid and the IdP has several keys")]
    NoKid,
    #[error("key does not allow this algorithm")]
    KeyAlgMismatch,
    #[error("signature verification failed")]
    Signature,
    #[error("claim {0:?} is missing")]
    MissingClaim(&'static str),
    #[error("claim {0:?} has the wrong type")]
    ClaimType(&'static str),
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("issuer not accepted")]
    Issuer(Box<Mismatch>),
    #[error("audience not accepted")]
    Audience(Box<Mismatch>),
    /// An opaque token its IdP's introspection endpoint says is not active.
    #[error("token is not active")]
    Inactive,
}

/// What a check expected and what the token carried: for the log line, never the response.
/// The received text is cut to [`Mismatch::MAX_CHARS`]; it is a header member or a claim,
/// never the token or its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The member's name, e.g. `typ`.
    pub member: &'static str,
    pub expected: String,
    /// `None`: the member was absent. JSON text when it is not a string.
    pub received: Option<String>,
}

impl Mismatch {
    pub const MAX_CHARS: usize = 128;

    pub(crate) fn new(member: &'static str, expected: &str, received: Option<&str>) -> Box<Self> {
        let bound = |text: &str| {
            let mut cut: String = text.chars().take(Self::MAX_CHARS).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            cut
        };
        Box::new(Mismatch {
            member,
            expected: expected.to_string(),
            received: received.map(bound),
        })
    }
}

impl std::fmt::Display for Mismatch {
    /// `typ "JWT", expected "at+jwt"` (quoted and escaped, so no control character reaches the
    /// log), or `typ absent, expected "at+jwt"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.received {
            Some(received) => write!(f, "{} {received:?}", self.member)?,
            None => write!(f, "{} absent", self.member)?,
        }
        write!(f, ", expected {:?}", self.expected)
    }
}

impl VerifyError {
    /// A short stable label for metrics (`resigner_verification_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::TooLarge => "too_large",
            VerifyError::Structure => "structure",
            VerifyError::Base64(_) => "base64",
            VerifyError::Json(_) => "json",
            VerifyError::Duplicate(..) => "duplicate_member",
            VerifyError::AlgNotAllowed => "alg_not_allowed",
            VerifyError::Crit => "crit",
            VerifyError::B64 => "b64",
            VerifyError::Nested => "nested",
            VerifyError::EmbeddedKey(_) => "embedded_key",
            VerifyError::HeaderType(_) => "header_type",
            VerifyError::Typ(_) => "typ",
            VerifyError::UnknownKid => "unknown_kid",
            VerifyError::NoKid => "no_kid",
            VerifyError::KeyAlgMismatch => "key_alg_mismatch",
            VerifyError::Signature => "signature",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::ClaimType(_) => "claim_type",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::IssuedInFuture => "issued_in_future",
            VerifyError::Issuer(_) => "issuer",
            VerifyError::Audience(_) => "audience",
            VerifyError::Inactive => "inactive",
        }
    }

    /// For the log: what a compared member held and what was expected, when that is the
    /// reason (`typ`, `iss`, `aud`).
    pub fn detail(&self) -> Option<&Mismatch> {
        match self {
            VerifyError::Typ(m) | VerifyError::Issuer(m) | VerifyError::Audience(m) => Some(m),
            _ => None,
        }
    }

    /// The text for logs and the operator's CLI: the description plus [`VerifyError::detail`].
    pub fn logged(&self) -> String {
        match self.detail() {
            Some(detail) => format!("{self}: {detail}"),
            None => self.to_string(),
        }
    }
}

/// A structurally valid token: header checked (except against an IdP's settings, see
/// [`check_header`]), payload decoded once, signature not yet verified. The claims are read
/// before the signature is checked only to find the IdP by `iss` ([`Parsed::issuer`]);
/// nothing else reads them until [`verify`] has checked the signature. A payload that is not
/// a JSON object is an error of [`Parsed::issuer`], or of [`verify`] after the signature.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    typ: Option<String>,
    signing_input: &'a str,
    claims: Result<Map<String, Value>, VerifyError>,
    signature: Vec<u8>,
}

impl Parsed<'_> {
    /// The `iss` claim, which selects the IdP whose keys and settings apply (RFC 8725 §3.8:
    /// compared exactly, never used to fetch anything).
    pub fn issuer(&self) -> Result<&str, VerifyError> {
        let claims = self.claims.as_ref().map_err(Clone::clone)?;
        match claims.get("iss") {
            None => Err(VerifyError::MissingClaim("iss")),
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(VerifyError::ClaimType("iss")),
        }
    }
}

/// Verified claims with the `exp` that bounds the re-signed token, and the IdP whose key
/// (or introspection endpoint) vouched for them: its scope claims and leeway apply from here.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Map<String, Value>,
    pub exp: i64,
    pub idp: std::sync::Arc<IdpSettings>,
    /// An introspected token: how much longer its answer may be relied on, which bounds how
    /// long what is made of it may be cached. `None` for a verified JWS.
    pub valid_for: Option<std::time::Duration>,
}

/// Whether `token` has the compact JWS shape (exactly two dots); anything else is opaque.
pub fn is_jws(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The claims of an introspected (active) token, checked like a JWS's: `iss` the IdP's,
/// `aud` containing `audience`, `exp` required and in the future, `nbf`/`iat` with leeway.
pub fn check_introspected(
    claims: Map<String, Value>,
    idp: &std::sync::Arc<IdpSettings>,
    audience: &str,
    now: i64,
    valid_for: std::time::Duration,
) -> Result<Verified, VerifyError> {
    let exp = check_claims(&claims, idp, audience, now)?;
    Ok(Verified {
        claims,
        exp,
        idp: idp.clone(),
        valid_for: Some(valid_for),
    })
}

/// Header members that would make the token carry or point at its own key (RFC 8725 §3.10).
/// They are refused, never dereferenced; the thumbprint hints `x5t`/`x5t#S256` are harmless.
const EMBEDDED_KEY_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Structure, header and payload checks, before any IdP or key is chosen.
pub fn parse(token: &str) -> Result<Parsed<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Structure);
    };
    if header_b64.is_empty() || payload_b64.is_empty() || sig_b64.is_empty() {
        return Err(VerifyError::Structure);
    }
    let header_bytes = b64::decode(header_b64).ok_or(VerifyError::Base64("header"))?;
    let header = json::parse_object(&header_bytes).map_err(|err| json_error("header", err))?;
    // `none`, HMAC and unknown names are no `Alg` at all; the IdP's allow-list comes next.
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name),
        _ => None,
    }
    .ok_or(VerifyError::AlgNotAllowed)?;
    if header.contains_key("crit") {
        // resigner understands no extension header, so any `crit` (even empty) is refused.
        return Err(VerifyError::Crit);
    }
    if header.contains_key("b64") {
        return Err(VerifyError::B64);
    }
    if let Some(cty) = header.get("cty") {
        let cty = cty.as_str().ok_or(VerifyError::HeaderType("cty"))?;
        if cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt") {
            return Err(VerifyError::Nested);
        }
    }
    for name in EMBEDDED_KEY_HEADERS {
        if header.contains_key(name) {
            return Err(VerifyError::EmbeddedKey(name));
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::HeaderType("kid")),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(VerifyError::HeaderType("typ")),
    };
    let signature = b64::decode(sig_b64).ok_or(VerifyError::Base64("signature"))?;
    let claims = b64::decode(payload_b64)
        .ok_or(VerifyError::Base64("payload"))
        .and_then(|payload| json::parse_object(&payload).map_err(|err| json_error("payload", err)));
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(Parsed {
        alg,
        kid,
        typ,
        signing_input,
        claims,
        signature,
    })
}

/// The header against the IdP the token names: its algorithm allow-list and required `typ`.
pub fn check_header(parsed: &Parsed<'_>, idp: &IdpSettings) -> Result<(), VerifyError> {
    if !idp.algorithms.contains(&parsed.alg) {
        return Err(VerifyError::AlgNotAllowed);
    }
    let typ = parsed.typ.as_deref();
    if let Some(required) = &idp.require_typ
        && !typ.is_some_and(|typ| typ_matches(typ, required))
    {
        return Err(VerifyError::Typ(Mismatch::new("typ", required, typ)));
    }
    Ok(())
}

/// RFC 8725 §3.11 / RFC 9068 §4: media types compare case-insensitively, with or without the
/// `application/` prefix.
fn typ_matches(typ: &str, required: &str) -> bool {
    let strip = |t: &str| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_string)
            .unwrap_or(lower)
    };
    strip(typ) == strip(required)
}

/// Checks the header against `idp` ([`check_header`]), the signature with `key` (one of
/// `idp`'s keys), then the claims against `idp` and `audience`.
pub fn verify(
    parsed: Parsed<'_>,
    key: &VerifyKey,
    idp: &std::sync::Arc<IdpSettings>,
    audience: &str,
    now: i64,
) -> Result<Verified, VerifyError> {
    check_header(&parsed, idp)?;
    if key.alg.is_some_and(|pinned| pinned != parsed.alg) {
        return Err(VerifyError::KeyAlgMismatch);
    }
    let public = key.for_alg(parsed.alg).ok_or(VerifyError::KeyAlgMismatch)?;
    public
        .verify_sig(parsed.signing_input.as_bytes(), &parsed.signature)
        .map_err(|_| VerifyError::Signature)?;
    let claims = parsed.claims?;
    let exp = check_claims(&claims, idp, audience, now)?;
    Ok(Verified {
        claims,
        exp,
        idp: idp.clone(),
        valid_for: None,
    })
}

fn check_claims(
    claims: &Map<String, Value>,
    idp: &IdpSettings,
    audience: &str,
    now: i64,
) -> Result<i64, VerifyError> {
    let leeway = idp.leeway.as_secs() as i64;
    match claims.get("iss") {
        None => return Err(VerifyError::MissingClaim("iss")),
        Some(Value::String(iss)) if *iss == idp.issuer => {}
        Some(Value::String(iss)) => {
            return Err(VerifyError::Issuer(Mismatch::new(
                "iss",
                &idp.issuer,
                Some(iss),
            )));
        }
        Some(_) => return Err(VerifyError::ClaimType("iss")),
    }
    let wrong_audience =
        |aud: &str| VerifyError::Audience(Mismatch::new("aud", audience, Some(aud)));
    match claims.get("aud") {
        None => return Err(VerifyError::MissingClaim("aud")),
        Some(Value::String(aud)) if aud == audience => {}
        Some(Value::String(aud)) => return Err(wrong_audience(aud)),
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err(VerifyError::ClaimType("aud"));
            }
            if !list.iter().any(|aud| aud == audience) {
                return Err(wrong_audience(&Value::Array(list.clone()).to_string()));
            }
        }
        Some(_) => return Err(VerifyError::ClaimType("aud")),
    }
    let exp = numeric_date(claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
    if exp <= now - leeway {
        return Err(VerifyError::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(VerifyError::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > now + leeway) {
        return Err(VerifyError::IssuedInFuture);
    }
    for name in ["sub", "jti", "client_id", "scope"] {
        if claims.get(name).is_some_and(|value| !value.is_string()) {
            return Err(VerifyError::ClaimType(claim_name(name)));
        }
    }
    Ok(exp)
}

/// A NumericDate claim: a non-negative JSON number (fractions floored). `null`, strings and
/// negative values are type errors.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            let value = number
                .as_i64()
                .or_else(|| {
                    number
                        .as_f64()
                        .filter(|f| f.is_finite() && f.abs() < 1e15)
                        .map(|f| f.floor() as i64)
                })
                .ok_or(VerifyError::ClaimType(name))?;
            if value < 0 {
                return Err(VerifyError::ClaimType(name));
            }
            Ok(Some(value))
        }
        Some(_) => Err(VerifyError::ClaimType(name)),
    }
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "sub" => "sub",
        "jti" => "jti",
        "client_id" => "client_id",
        _ => "scope",
    }
}

fn json_error(part: &'static str, err: JsonError) -> VerifyError {
    match err {
        JsonError::Duplicate(name) => VerifyError::Duplicate(part, name.chars().take(64).collect()),
        JsonError::Syntax | JsonError::NotObject => VerifyError::Json(part),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_follows_rfc_8725() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("application/AT+JWT", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
    }

    #[test]
    fn mismatches_say_what_came_bounded_and_escaped() {
        let typ = Mismatch::new("typ", "at+jwt", Some("JWT"));
        assert_eq!(typ.to_string(), r#"typ "JWT", expected "at+jwt""#);
        let absent = Mismatch::new("typ", "at+jwt", None);
        assert_eq!(absent.to_string(), r#"typ absent, expected "at+jwt""#);
        let long = "x".repeat(1000) + "\n";
        let iss = Mismatch::new("iss", "https://idp/", Some(&format!("{long}\nforged line")));
        let text = iss.to_string();
        assert!(text.len() < Mismatch::MAX_CHARS + 40, "{text}");
        assert!(!text.contains('\n'), "{text}");
        let control = Mismatch::new("iss", "https://idp/", Some("a\nb"));
        assert_eq!(
            control.to_string(),
            r#"iss "a\nb", expected "https://idp/""#
        );
    }
}
