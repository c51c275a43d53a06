//! Signature algorithms for rustls-webpki that remember the signatures they
//! have already verified.
//!
//! A process that verifies the same chains again and again (`minica probe`
//! retries, a batch of `verify` calls, a server checking the same clients)
//! spends nearly all its time in ECDSA/RSA verification of the same few
//! intermediate and leaf signatures. This cache keys a *successful*
//! verification by the SHA-256 of everything the result depends on (both
//! algorithm identifiers, the public key, the message and the signature), so
//! a hit is exactly as sound as SHA-256's collision resistance. Failures are
//! never cached. The set is bounded and cleared when full.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// The most remembered signatures; the set is cleared when it is full. 16 Ki
/// entries of 32 bytes: well under 1 MiB.
const CAPACITY: usize = 16 * 1024;

static VERIFIED: LazyLock<Mutex<HashSet<[u8; 32]>>> =
    LazyLock::new(|| Mutex::new(HashSet::with_capacity(256)));

/// A ring algorithm behind the cache.
#[derive(Debug)]
pub(super) struct Cached(pub(super) &'static dyn SignatureVerificationAlgorithm);

fn key(
    alg: &dyn SignatureVerificationAlgorithm,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        alg.signature_alg_id().as_ref(),
        alg.public_key_alg_id().as_ref(),
        public_key,
        message,
        signature,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl SignatureVerificationAlgorithm for Cached {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let k = key(self.0, public_key, message, signature);
        if let Ok(set) = VERIFIED.lock() {
            if set.contains(&k) {
                return Ok(());
            }
        }
        self.0.verify_signature(public_key, message, signature)?;
        if let Ok(mut set) = VERIFIED.lock() {
            if set.len() >= CAPACITY {
                set.clear();
            }
            set.insert(k);
        }
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.0.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.0.signature_alg_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_only_successes() {
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let msg = b"hello";
        let sig = rcgen::SigningKey::sign(&key_pair, msg).unwrap();
        let pk = rcgen::PublicKeyData::der_bytes(&key_pair);
        let alg = Cached(webpki::ring::ECDSA_P256_SHA256);
        assert!(alg.verify_signature(pk, msg, &sig).is_ok());
        assert!(
            alg.verify_signature(pk, msg, &sig).is_ok(),
            "from the cache"
        );
        assert!(alg.verify_signature(pk, b"hellO", &sig).is_err());
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(alg.verify_signature(pk, msg, &bad).is_err());
        assert!(
            alg.verify_signature(pk, msg, &bad).is_err(),
            "failures are not cached"
        );
        // the same bytes under another algorithm are not a hit
        let other = Cached(webpki::ring::ECDSA_P256_SHA384);
        assert!(other.verify_signature(pk, msg, &sig).is_err());
    }
}
