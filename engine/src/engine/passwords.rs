//! Password hashes: the argon2id hasher, generated passwords, random bytes.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;

use super::PasswordCost;

pub(super) fn password_hasher(cost: PasswordCost) -> Box<dyn Fn(&str) -> String + Send + Sync> {
    Box::new(move |pw: &str| {
        let params = match cost {
            PasswordCost::Standard => argon2::Params::default(),
            PasswordCost::InsecureFast => {
                argon2::Params::new(64, 1, 1, None).expect("valid argon2 parameters")
            }
        };
        let a = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt =
            SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a valid salt");
        a.hash_password(pw.as_bytes(), &salt)
            .expect("argon2id hashing with valid parameters cannot fail")
            .to_string()
    })
}

pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the operating system's random source works");
    b
}

pub(super) fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
