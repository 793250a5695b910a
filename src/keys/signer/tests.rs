//! The signer abstraction with the in-memory backend: what it signs, its public JWK verifies.

use super::*;

#[test]
fn every_output_algorithm_signs_what_its_public_jwk_verifies() {
    for alg in Alg::ALL {
        let der = SigningKey::generate_pkcs8(alg).unwrap();
        let key = SigningKey::from_pkcs8(&der, alg, None).unwrap();
        assert_eq!(key.kid(), key.public_jwk().material.thumbprint());
        let token = key.sign_compact(br#"{"sub":"x"}"#).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let parsed = key.public_jwk().material.parse_for(alg).unwrap();
        parsed
            .verify_sig(input.as_bytes(), &b64::decode(sig).unwrap())
            .unwrap();
        let header = crate::jose::json::parse_object(
            &b64::decode(input.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg.name());
        assert_eq!(header["typ"], "at+jwt");
        assert!(!format!("{key:?}").contains("pair"));
    }
}

#[test]
fn wrong_algorithm_for_the_key_is_refused() {
    let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
    assert!(SigningKey::from_pkcs8(&der, Alg::RS256, None).is_err());
    assert!(SigningKey::from_pkcs8(&der, Alg::ES384, None).is_err());
}
