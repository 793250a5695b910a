//! Which [`SignerError`] kind a cryptoki error is: the token or session gone is
//! `Unavailable` (reconnect and retry later), a PIN or permission problem `Refused`, a
//! request the token cannot do `Failed`. Whether a PIN error also stops further logins is
//! decided where `C_Login` is called (`token::login`).
//!
//! May use: cryptoki's error types, the signer's error type.

use cryptoki::error::{Error as CkError, RvError};

use crate::keys::signer::SignerError;

/// A cryptoki error as a [`SignerError`] kind.
pub fn classify(err: &CkError) -> SignerError {
    let text = err.to_string();
    match err {
        CkError::Pkcs11(rv, _) => match rv {
            rv if is_pin_error(*rv) => SignerError::Refused(text),
            RvError::KeyFunctionNotPermitted => SignerError::Refused(text),
            RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::ArgumentsBad
            | RvError::DataLenRange
            | RvError::DataInvalid => SignerError::Failed(text),
            _ => SignerError::Unavailable(text),
        },
        CkError::LibraryLoading(_) => SignerError::Unavailable(text),
        _ => SignerError::Failed(text),
    }
}

/// Whether `rv` says the PIN itself is wrong, locked, expired or malformed: trying it again
/// only counts down the token's retry counter.
pub fn is_pin_error(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::PinIncorrect
            | RvError::PinLocked
            | RvError::PinExpired
            | RvError::PinInvalid
            | RvError::PinLenRange
    )
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    fn kind(rv: RvError) -> &'static str {
        classify(&CkError::Pkcs11(rv, Function::Sign)).kind()
    }

    #[test]
    fn each_return_value_has_its_kind() {
        for rv in [
            RvError::PinIncorrect,
            RvError::PinLocked,
            RvError::PinExpired,
            RvError::PinInvalid,
            RvError::PinLenRange,
            RvError::KeyFunctionNotPermitted,
        ] {
            assert_eq!(kind(rv), "refused", "{rv}");
        }
        for rv in [
            RvError::MechanismInvalid,
            RvError::MechanismParamInvalid,
            RvError::ArgumentsBad,
            RvError::DataLenRange,
            RvError::DataInvalid,
        ] {
            assert_eq!(kind(rv), "failed", "{rv}");
        }
        for rv in [
            RvError::TokenNotPresent,
            RvError::DeviceRemoved,
            RvError::SessionHandleInvalid,
            RvError::ObjectHandleInvalid,
            RvError::UserNotLoggedIn,
            RvError::CryptokiNotInitialized,
            RvError::DeviceError,
        ] {
            assert_eq!(kind(rv), "unavailable", "{rv}");
        }
        assert!(
            is_pin_error(RvError::PinLocked) && !is_pin_error(RvError::KeyFunctionNotPermitted)
        );
    }

    #[test]
    fn errors_outside_the_token_are_failed_or_unavailable() {
        // A real loading error: the module path does not exist.
        match cryptoki::context::Pkcs11::new("/nonexistent/libnothing.so") {
            Err(err @ CkError::LibraryLoading(_)) => {
                assert_eq!(classify(&err).kind(), "unavailable")
            }
            other => panic!("expected a loading error, got {:?}", other.err()),
        }
        assert_eq!(classify(&CkError::NullFunctionPointer).kind(), "failed");
        assert_eq!(classify(&CkError::PinNotSet).kind(), "failed");
    }
}
