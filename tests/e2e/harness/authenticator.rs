//! A software authenticator for the HTTP tests: what a browser and its authenticator hand the
//! provider in a WebAuthn ceremony (WebAuthn Level 3 §6, §7), built here from the options the
//! provider sends, with a P-256 key (ES256) and "none" attestation. It can also misbehave as
//! an attacker would: answer for another origin, skip user verification, put its counter back.
//!
//! Written by hand because the only thing to encode is a few fixed CBOR shapes (an
//! attestation object and a COSE key), and the provider's side is what is under test.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Authenticator data flags (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

pub struct SoftKey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The user handle the registration options gave (a discoverable credential keeps it).
    pub user_handle: Vec<u8>,
    pub counter: u32,
    /// Backup eligible: a passkey that may be synchronised (`swk`), else device-bound (`hwk`).
    pub backup_eligible: bool,
    /// Whether it says it verified the person.
    pub verifies: bool,
    /// The origin its browser reports.
    pub origin: String,
    rp_id: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// A CBOR byte string header and the bytes (RFC 8949 §3.1, major type 2).
fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = match bytes.len() {
        n if n < 24 => vec![0x40 | u8::try_from(n).unwrap()],
        n if n < 256 => vec![0x58, u8::try_from(n).unwrap()],
        n => {
            let n = u16::try_from(n).unwrap().to_be_bytes();
            vec![0x59, n[0], n[1]]
        }
    };
    out.extend_from_slice(bytes);
    out
}

/// A CBOR text string (major type 3), short.
fn cbor_text(text: &str) -> Vec<u8> {
    let mut out = vec![0x60 | u8::try_from(text.len()).unwrap()];
    out.extend_from_slice(text.as_bytes());
    out
}

impl SoftKey {
    /// A new authenticator for the provider at `issuer` (its origin and host, as a browser on
    /// it would report them): backup eligible or not, verifying the person.
    pub fn new(issuer: &str, backup_eligible: bool) -> Self {
        let url = url::Url::parse(issuer).unwrap();
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let mut credential_id = vec![0u8; 32];
        rand::fill(&mut credential_id[..]);
        Self {
            key,
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            backup_eligible,
            verifies: true,
            origin: url.origin().ascii_serialization(),
            rp_id: url.host_str().unwrap().to_owned(),
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = UP;
        if self.verifies {
            flags |= UV;
        }
        if self.backup_eligible {
            flags |= BE;
        }
        flags
    }

    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// The COSE_Key of the public key (RFC 9053 §7.1.1: EC2, P-256, ES256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let mut key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        key.extend(cbor_bytes(&point[1..33]));
        key.push(0x22);
        key.extend(cbor_bytes(&point[33..65]));
        key
    }

    /// The answer to `navigator.credentials.create` with the provider's options (the JSON
    /// `{"publicKey": …}` it sent), as the page's script posts it.
    pub fn register(&mut self, options: &serde_json::Value) -> String {
        let public_key = &options["publicKey"];
        let challenge = public_key["challenge"].as_str().expect("a challenge");
        self.user_handle = unb64(public_key["user"]["id"].as_str().expect("a user handle"));
        let mut auth_data = self.auth_data(self.flags() | AT);
        auth_data.extend_from_slice(&[0u8; 16]);
        let id_len = u16::try_from(self.credential_id.len()).unwrap();
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = vec![0xa3];
        attestation.extend(cbor_text("fmt"));
        attestation.extend(cbor_text("none"));
        attestation.extend(cbor_text("attStmt"));
        attestation.push(0xa0);
        attestation.extend(cbor_text("authData"));
        attestation.extend(cbor_bytes(&auth_data));
        let client_data = self.client_data("webauthn.create", challenge);
        serde_json::json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to `navigator.credentials.get` with the provider's options, signed, with
    /// the counter moved on first when it counts.
    pub fn sign_in(&mut self, options: &serde_json::Value) -> String {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        if self.counter > 0 {
            self.counter += 1;
        }
        let auth_data = self.auth_data(self.flags());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        serde_json::json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}
