//! Fuzz target `x509`: arbitrary bytes as a DER certificate, through
//! `resigner::keys::x509::leaf_public_key`, the hand-written DER reader behind `x5c` checks
//! of imported keys (reached only through base64 text in `jwk_set`, so fuzzed here on raw
//! bytes). Besides "never panics": a key it returns has the shape the JWK side expects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resigner::keys::KeyMaterial;
use resigner::keys::x509;

fuzz_target!(|data: &[u8]| {
    match x509::leaf_public_key(data) {
        Ok(KeyMaterial::Ec { curve, x, y }) => {
            assert_eq!(x.len(), curve.coordinate_len());
            assert_eq!(y.len(), curve.coordinate_len());
        }
        Ok(KeyMaterial::Ed25519 { x }) => assert_eq!(x.len(), 32),
        Ok(KeyMaterial::Rsa { n, e }) => assert!(n.first() > Some(&0) && e.first() > Some(&0)),
        Err(_) => {}
    }
});
