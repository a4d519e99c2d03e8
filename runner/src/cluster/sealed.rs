//! setup()'s values sealed for one runner with HPKE (RFC 9180), so that no report ConfigMap —
//! which anyone holding the namespace's `view` role may read — carries a token setup() captured.
//!
//! Every runner but runner 0 makes a key pair when it prepares and publishes the public key in
//! its Ready report. Runner 0 runs setup(), makes a key pair for the run, seals the values once
//! to the run's key and the run's private key to each runner's key (80 bytes a runner, so 100
//! runners add 14 KB to its report, not 100 copies of the values), and publishes both. Each
//! runner opens its copy of the run's key with the private key that never leaves its process,
//! then the values. The HPKE `info` names the LoadTest and run, and the runner for its copy of
//! the key, so nothing sealed for one runner or run can be passed off as another's.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

/// RFC 9180's mandatory-to-implement suite with the AEAD that needs no AES instructions.
type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// A runner's key pair for opening the setup values sealed for it.
pub struct SetupKey {
    private: PrivateKey,
    public: PublicKey,
}

impl SetupKey {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> SetupKey {
        let (private, public) = Kem::gen_keypair();
        SetupKey { private, public }
    }

    /// The public key as its report carries it (base64 of the 32 bytes).
    pub fn public(&self) -> String {
        BASE64.encode(self.public.to_bytes())
    }
}

impl fmt::Debug for SetupKey {
    // The private key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupKey")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// One HPKE message as a report carries it (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBox {
    /// The encapsulated key (HPKE's `enc`).
    pub enc: String,
    /// The encrypted and authenticated plaintext.
    pub ciphertext: String,
}

/// setup()'s values as runner 0's report carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSetup {
    /// The values' JSON object, sealed to the run's key.
    pub values: SealedBox,
    /// The run's private key, sealed to each runner's key, by runner index.
    pub keys: BTreeMap<u64, SealedBox>,
}

impl SealedSetup {
    /// Bytes it adds to a report (base64 text, without JSON punctuation).
    pub fn encoded_bytes(&self) -> usize {
        let size = |b: &SealedBox| b.enc.len() + b.ciphertext.len();
        size(&self.values) + self.keys.values().map(size).sum::<usize>()
    }
}

/// The run that sealed setup values belong to.
#[derive(Debug, Clone, Copy)]
pub struct RunId<'a> {
    /// The LoadTest's namespace.
    pub namespace: &'a str,
    /// The LoadTest's name.
    pub loadtest: &'a str,
    /// The run (`status.run`).
    pub run: i64,
}

impl RunId<'_> {
    /// HPKE's `info` for the values.
    fn values_info(&self) -> Vec<u8> {
        format!(
            "stampede setup values v1\n{}/{}\nrun {}",
            self.namespace, self.loadtest, self.run
        )
        .into_bytes()
    }

    /// HPKE's `info` for runner `runner`'s copy of the run's key.
    fn key_info(&self, runner: u64) -> Vec<u8> {
        format!(
            "stampede setup key v1\n{}/{}\nrun {}\nrunner {runner}",
            self.namespace, self.loadtest, self.run
        )
        .into_bytes()
    }
}

/// Why setup values could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// A runner published something that is not a public key.
    #[error("runner {runner}'s setupKey is not the base64 of a 32-byte X25519 public key")]
    PublicKey {
        /// The runner.
        runner: u64,
    },
    /// HPKE refused to seal (a public key of low order).
    #[error("the setup values could not be sealed for runner {runner}: {reason}")]
    Seal {
        /// The runner.
        runner: u64,
        /// HPKE's reason.
        reason: String,
    },
    /// Nothing was sealed for this runner.
    #[error("runner 0 sealed no setup values for runner {runner}")]
    Missing {
        /// The runner.
        runner: u64,
    },
    /// They do not open with this runner's key: not base64 of HPKE messages, sealed for
    /// another runner or run, or altered.
    #[error(
        "the setup values sealed for runner {runner} do not open with its key: they were sealed \
         for another runner or run, or altered in runner 0's report"
    )]
    Open {
        /// The runner.
        runner: u64,
    },
}

fn seal_box(
    key: &PublicKey,
    info: &[u8],
    plaintext: &[u8],
    runner: u64,
) -> Result<SealedBox, SealError> {
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        key,
        info,
        plaintext,
        &[],
    )
    .map_err(|error| SealError::Seal {
        runner,
        reason: error.to_string(),
    })?;
    Ok(SealedBox {
        enc: BASE64.encode(enc.to_bytes()),
        ciphertext: BASE64.encode(ciphertext),
    })
}

fn open_box(
    sealed: &SealedBox,
    key: &PrivateKey,
    info: &[u8],
    runner: u64,
) -> Result<Vec<u8>, SealError> {
    let enc = BASE64
        .decode(&sealed.enc)
        .ok()
        .and_then(|bytes| EncappedKey::from_bytes(&bytes).ok())
        .ok_or(SealError::Open { runner })?;
    let ciphertext = BASE64
        .decode(&sealed.ciphertext)
        .map_err(|_| SealError::Open { runner })?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        key,
        &enc,
        info,
        &ciphertext,
        &[],
    )
    .map_err(|_| SealError::Open { runner })
}

/// Seals `values` for the runners whose reports published `public_keys` (by runner index).
pub fn seal(
    values: &BTreeMap<String, String>,
    public_keys: &BTreeMap<u64, String>,
    run: RunId<'_>,
) -> Result<SealedSetup, SealError> {
    let (run_private, run_public) = Kem::gen_keypair();
    // A map of strings always serializes.
    let plaintext = serde_json::to_vec(values).unwrap_or_default();
    let values = seal_box(&run_public, &run.values_info(), &plaintext, 0)?;
    let run_private = run_private.to_bytes();
    let keys = public_keys
        .iter()
        .map(|(&runner, public_key)| {
            let key = BASE64
                .decode(public_key)
                .ok()
                .and_then(|bytes| PublicKey::from_bytes(&bytes).ok())
                .ok_or(SealError::PublicKey { runner })?;
            let copy = seal_box(&key, &run.key_info(runner), &run_private, runner)?;
            Ok((runner, copy))
        })
        .collect::<Result<_, SealError>>()?;
    Ok(SealedSetup { values, keys })
}

/// Opens the values sealed for `runner` of `run` with its `key`.
pub fn open(
    sealed: &SealedSetup,
    key: &SetupKey,
    run: RunId<'_>,
    runner: u64,
) -> Result<BTreeMap<String, String>, SealError> {
    let copy = sealed
        .keys
        .get(&runner)
        .ok_or(SealError::Missing { runner })?;
    let run_private = open_box(copy, &key.private, &run.key_info(runner), runner)?;
    let run_private =
        PrivateKey::from_bytes(&run_private).map_err(|_| SealError::Open { runner })?;
    let plaintext = open_box(&sealed.values, &run_private, &run.values_info(), runner)?;
    // Authenticated plaintext is what runner 0 serialized; anything else was forged with a
    // public key, and opens nothing more than the runner would have run with.
    serde_json::from_slice(&plaintext).map_err(|_| SealError::Open { runner })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: RunId<'static> = RunId {
        namespace: "shop",
        loadtest: "checkout",
        run: 3,
    };

    fn values() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("token".to_string(), "eyJhbGciOi.s3cr3t".to_string()),
            ("user".to_string(), "admin".to_string()),
        ])
    }

    /// Keys for runners 1..=n and what their reports publish.
    fn runners(n: u64) -> (Vec<SetupKey>, BTreeMap<u64, String>) {
        let keys: Vec<SetupKey> = (0..n).map(|_| SetupKey::generate()).collect();
        let published = (1..=n).zip(keys.iter().map(SetupKey::public)).collect();
        (keys, published)
    }

    #[test]
    fn every_runner_opens_the_values_and_the_report_shows_none_of_them() {
        let (keys, published) = runners(3);
        let sealed = seal(&values(), &published, RUN).unwrap();
        let carried = serde_json::to_string(&sealed).unwrap();
        assert!(
            !carried.contains("s3cr3t") && !carried.contains("admin"),
            "{carried}"
        );
        for (runner, key) in (1..).zip(&keys) {
            assert_eq!(open(&sealed, key, RUN, runner).unwrap(), values());
        }
    }

    #[test]
    fn the_values_are_sealed_once_and_each_runner_adds_a_key_copy_only() {
        let big = BTreeMap::from([("token".to_string(), "x".repeat(2000))]);
        let one = seal(&big, &runners(1).1, RUN).unwrap().encoded_bytes();
        let hundred = seal(&big, &runners(100).1, RUN).unwrap().encoded_bytes();
        // A copy of the run's key: base64 of a 32-byte enc and a 32-byte key with its tag.
        assert_eq!((hundred - one) / 99, 44 + 64);
        // The values once: base64 of a 32-byte enc, and of their JSON with its 16-byte tag.
        let json = serde_json::to_vec(&big).unwrap().len();
        assert_eq!(one - (44 + 64), 44 + (json + 16).div_ceil(3) * 4);
    }

    #[test]
    fn sealing_twice_gives_different_text() {
        let (_, published) = runners(1);
        let first = seal(&values(), &published, RUN).unwrap();
        let second = seal(&values(), &published, RUN).unwrap();
        assert_ne!(first.values, second.values);
        assert_ne!(first.keys, second.keys);
    }

    #[test]
    fn values_do_not_open_for_another_runner_run_or_key() {
        let (keys, published) = runners(2);
        let sealed = seal(&values(), &published, RUN).unwrap();
        // Runner 2's copy of the key, put where runner 1's belongs.
        let mut swapped = sealed.clone();
        swapped.keys.insert(1, sealed.keys[&2].clone());
        assert_eq!(
            open(&swapped, &keys[0], RUN, 1),
            Err(SealError::Open { runner: 1 })
        );
        let later = RunId { run: 4, ..RUN };
        assert_eq!(
            open(&sealed, &keys[0], later, 1),
            Err(SealError::Open { runner: 1 })
        );
        assert_eq!(
            open(&sealed, &SetupKey::generate(), RUN, 1),
            Err(SealError::Open { runner: 1 })
        );
        assert_eq!(
            open(&sealed, &keys[0], RUN, 3),
            Err(SealError::Missing { runner: 3 })
        );
    }

    #[test]
    fn altered_values_are_refused_with_the_runner_named() {
        let (keys, published) = runners(1);
        let mut sealed = seal(&values(), &published, RUN).unwrap();
        let mut bytes = BASE64.decode(&sealed.values.ciphertext).unwrap();
        bytes[0] ^= 1;
        sealed.values.ciphertext = BASE64.encode(bytes);
        let error = open(&sealed, &keys[0], RUN, 1).unwrap_err();
        assert_eq!(error, SealError::Open { runner: 1 });
        assert!(error.to_string().contains("runner 1"), "{error}");

        sealed.values.enc = "not base64!".into();
        assert_eq!(
            open(&sealed, &keys[0], RUN, 1),
            Err(SealError::Open { runner: 1 })
        );
    }

    #[test]
    fn a_published_key_that_is_not_a_key_is_refused_with_the_runner_named() {
        for bad in ["", "not base64!", &BASE64.encode([1u8; 31])] {
            let published = BTreeMap::from([(2, bad.to_string())]);
            assert_eq!(
                seal(&values(), &published, RUN),
                Err(SealError::PublicKey { runner: 2 }),
                "{bad:?}"
            );
        }
        // The all-zero point: X25519 with it gives no shared secret.
        let published = BTreeMap::from([(5, BASE64.encode([0u8; 32]))]);
        assert!(matches!(
            seal(&values(), &published, RUN),
            Err(SealError::Seal { runner: 5, .. })
        ));
    }

    #[test]
    fn the_private_key_stays_out_of_debug_output() {
        let key = SetupKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public()));
        assert!(!shown.contains(&BASE64.encode(key.private.to_bytes())));
    }
}
