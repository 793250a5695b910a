//! What is done on a token: find the slot by token label, open a logged-in session, find the
//! key pair by label and read its public half, and (`resigner keys generate --pkcs11`)
//! generate a key pair whose private half is sensitive and never extractable.
//!
//! May use: cryptoki, `keys::jwk`, `jose::alg`, the parent module.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::classify::{classify, is_pin_error};
use super::mechanism::{Plan, ec_point};
use super::module::{self, Pooled};
use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::keys::jwk::KeyMaterial;
use crate::keys::signer::{Pkcs11Spec, SignerError, ec_material};

/// A key pair found on a token.
pub struct Found {
    pub slot: Slot,
    pub private: ObjectHandle,
    pub material: KeyMaterial,
    pub plan: Plan,
}

fn ck(err: CkError) -> SignerError {
    classify(&err)
}

/// The slot holding the token labelled `label`.
fn slot_of(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, SignerError> {
    for slot in ctx.get_slots_with_token().map_err(ck)? {
        if ctx.get_token_info(slot).map_err(ck)?.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// The module context and the slot of the spec's token, re-initialising the module once when
/// the token is not (or no longer) found.
fn locate(spec: &Pkcs11Spec) -> Result<(Pkcs11, Slot, u64), SignerError> {
    let (ctx, generation) = module::context(&spec.module)?;
    if let Ok(Some(slot)) = slot_of(&ctx, &spec.token_label) {
        return Ok((ctx, slot, generation));
    }
    let (ctx, generation) = module::reinitialize(&spec.module, generation)?;
    match slot_of(&ctx, &spec.token_label)? {
        Some(slot) => Ok((ctx, slot, generation)),
        None => Err(SignerError::Unavailable(format!(
            "no token labelled {:?} in PKCS#11 module {}",
            spec.token_label,
            spec.module.display()
        ))),
    }
}

/// What `C_Login` has done for one key: how often it was called, and whether the token
/// refused the PIN (after which nothing logs in again until a reload: see the parent's
/// "PIN refused").
#[derive(Default)]
pub struct Logins {
    pub attempts: AtomicU64,
    pub pin_refused: AtomicBool,
}

fn login(session: &Session, spec: &Pkcs11Spec, logins: &Logins) -> Result<(), SignerError> {
    if logins.pin_refused.load(Ordering::Relaxed) {
        return Err(SignerError::Refused(super::PIN_REFUSED.into()));
    }
    let pin = spec
        .pin
        .read()
        .map_err(|err| SignerError::Refused(format!("the token PIN: {err}")))?;
    logins.attempts.fetch_add(1, Ordering::Relaxed);
    match session.login(UserType::User, Some(&AuthPin::from(pin))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(rv, _)) if is_pin_error(rv) => {
            logins.pin_refused.store(true, Ordering::Relaxed);
            Err(SignerError::Refused(format!(
                "{} ({rv})",
                super::PIN_REFUSED
            )))
        }
        Err(err) => Err(ck(err)),
    }
}

/// Opens a logged-in session on `slot` in module generation `generation`.
pub fn open_session(
    spec: &Pkcs11Spec,
    slot: Slot,
    generation: u64,
    logins: &Logins,
) -> Result<Pooled, SignerError> {
    let (ctx, current) = module::context(&spec.module)?;
    if current != generation {
        return Err(SignerError::Unavailable(
            "the PKCS#11 module was re-initialised".into(),
        ));
    }
    open(&ctx, spec, slot, generation, false, logins)
}

fn open(
    ctx: &Pkcs11,
    spec: &Pkcs11Spec,
    slot: Slot,
    generation: u64,
    rw: bool,
    logins: &Logins,
) -> Result<Pooled, SignerError> {
    let session = match rw {
        true => ctx.open_rw_session_no_drop(slot),
        false => ctx.open_ro_session_no_drop(slot),
    }
    .map_err(ck)?;
    let pooled = Pooled::new(session, generation, &spec.module);
    login(pooled.session(), spec, logins)?;
    Ok(pooled)
}

/// Finds the spec's key pair for `alg`: its slot, private handle, public half and signing
/// plan, with the logged-in session it was found in.
pub fn find(
    spec: &Pkcs11Spec,
    alg: Alg,
    logins: &Logins,
) -> Result<(Found, Pooled, u64), SignerError> {
    let (ctx, slot, generation) = locate(spec)?;
    let pooled = open(&ctx, spec, slot, generation, false, logins)?;
    let session = pooled.session();
    let label = Attribute::Label(spec.key_label.as_bytes().to_vec());
    let private = one(session, ObjectClass::PRIVATE_KEY, &label, spec)?;
    let material = public_material(session, &label, private, alg, spec)?;
    let mechanisms = ctx.get_mechanism_list(slot).map_err(ck)?;
    let plan = Plan::choose(alg, &mechanisms).ok_or_else(|| {
        SignerError::Failed(format!(
            "token {:?} offers no mechanism for {}",
            spec.token_label,
            alg.name()
        ))
    })?;
    let found = Found {
        slot,
        private,
        material,
        plan,
    };
    Ok((found, pooled, generation))
}

/// The public half of the spec's key pair, read from the token (`resigner keys jwks`).
pub fn read_public(spec: &Pkcs11Spec, alg: Alg) -> Result<KeyMaterial, SignerError> {
    find(spec, alg, &Logins::default()).map(|(found, _, _)| found.material)
}

fn one(
    session: &Session,
    class: ObjectClass,
    label: &Attribute,
    spec: &Pkcs11Spec,
) -> Result<ObjectHandle, SignerError> {
    let found = session
        .find_objects(&[Attribute::Class(class), label.clone()])
        .map_err(ck)?;
    match found.as_slice() {
        [handle] => Ok(*handle),
        [] => Err(SignerError::Unavailable(format!(
            "no {} labelled {:?} on token {:?}",
            if class == ObjectClass::PRIVATE_KEY {
                "private key"
            } else {
                "public key"
            },
            spec.key_label,
            spec.token_label
        ))),
        _ => Err(SignerError::Failed(format!(
            "{} keys are labelled {:?} on token {:?}; labels must be unique",
            found.len(),
            spec.key_label,
            spec.token_label
        ))),
    }
}

/// The public material: from the public key object, or (RSA) from the private key's
/// modulus and exponent when the token keeps no public object.
fn public_material(
    session: &Session,
    label: &Attribute,
    private: ObjectHandle,
    alg: Alg,
    spec: &Pkcs11Spec,
) -> Result<KeyMaterial, SignerError> {
    let public = one(session, ObjectClass::PUBLIC_KEY, label, spec);
    let wrong = |what: &str| {
        SignerError::Failed(format!(
            "key {:?}: {what} for {}",
            spec.key_label,
            alg.name()
        ))
    };
    match alg.family() {
        KeyFamily::Rsa => {
            let handle = public.unwrap_or(private);
            let attrs = session
                .get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(ck)?;
            let (mut n, mut e) = (None, None);
            for attr in attrs {
                match attr {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(wrong("not an RSA key"));
            };
            let n = strip_zeros(n);
            let bits = n.len() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(wrong(&format!(
                    "an RSA modulus of {bits} bits (2048 to 8192 are accepted)"
                )));
            }
            Ok(KeyMaterial::Rsa {
                n,
                e: strip_zeros(e),
            })
        }
        KeyFamily::Ec(curve) => {
            let attrs = session
                .get_attributes(public?, &[AttributeType::EcPoint])
                .map_err(ck)?;
            let point = attrs.into_iter().find_map(|attr| match attr {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            });
            point
                .and_then(|point| ec_material(curve, ec_point(&point)))
                .ok_or_else(|| wrong("not an EC key on the curve"))
        }
        KeyFamily::Ed25519 => Err(wrong("unsupported on PKCS#11")),
    }
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.drain(..first);
    bytes
}

/// The DER OID of a curve, as `CKA_EC_PARAMS` holds it.
fn curve_params(curve: Curve) -> Vec<u8> {
    match curve {
        Curve::P256 => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        Curve::P384 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        Curve::P521 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    }
}

/// Generates a key pair for `alg` on the spec's token, labelled `key_label`: the private half
/// sensitive and not extractable. Refuses when a key with that label exists. Returns the
/// public half.
pub fn generate(spec: &Pkcs11Spec, alg: Alg) -> Result<KeyMaterial, SignerError> {
    let (ctx, slot, generation) = locate(spec)?;
    let pooled = open(&ctx, spec, slot, generation, true, &Logins::default())?;
    let session = pooled.session();
    let label = Attribute::Label(spec.key_label.as_bytes().to_vec());
    let existing = session
        .find_objects(std::slice::from_ref(&label))
        .map_err(ck)?;
    if !existing.is_empty() {
        return Err(SignerError::Refused(format!(
            "token {:?} already holds objects labelled {:?}; refusing to add another key under that label",
            spec.token_label, spec.key_label
        )));
    }
    let id = Attribute::Id(spec.key_label.as_bytes().to_vec());
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        label.clone(),
        id.clone(),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        label,
        id,
    ];
    let mechanism = match alg.family() {
        KeyFamily::Rsa => {
            public.push(Attribute::KeyType(KeyType::RSA));
            public.push(Attribute::ModulusBits(2048u64.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyFamily::Ec(curve) => {
            public.push(Attribute::KeyType(KeyType::EC));
            public.push(Attribute::EcParams(curve_params(curve)));
            Mechanism::EccKeyPairGen
        }
        KeyFamily::Ed25519 => {
            return Err(SignerError::Failed(
                "EdDSA keys are not supported on PKCS#11".into(),
            ));
        }
    };
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(ck)?;
    drop(pooled);
    read_public(spec, alg)
}
