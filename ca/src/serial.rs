//! Certificate serial numbers: random, positive, at least 64 bits of entropy.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// Bytes in a new serial. 16 random bytes with the top bit cleared give 127
/// bits of entropy, far above the 64 bits the CA/Browser Forum asks for, and
/// stay under the 20-octet limit of RFC 5280 once DER-encoded.
const SERIAL_LEN: usize = 16;

/// A certificate serial number (big-endian magnitude, no leading zero bytes).
/// Shown and stored as lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A new random positive serial: the top bit is cleared (so DER needs no
    /// padding byte) and the first byte is never zero (so the length is fixed).
    pub fn random() -> Self {
        let mut bytes = [0u8; SERIAL_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes[0] &= 0x7f;
        if bytes[0] == 0 {
            bytes[0] = 1;
        }
        Serial(bytes.to_vec())
    }

    /// A serial from its big-endian bytes (as found in a certificate);
    /// leading zero bytes are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Serial(bytes[start..].to_vec())
    }

    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex, e.g. `5f3a...`.
    pub fn to_hex(&self) -> String {
        if self.0.is_empty() {
            return "00".to_string();
        }
        hex::encode(&self.0)
    }

    pub(crate) fn to_rcgen(&self) -> rcgen::SerialNumber {
        rcgen::SerialNumber::from_slice(&self.0)
    }
}

/// A serial given as hex could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid serial {0:?}: expected hex digits (optionally with ':' separators)")]
pub struct SerialParseError(pub String);

impl FromStr for Serial {
    type Err = SerialParseError;

    /// Parses hex with or without `:` separators (as openssl prints them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut digits: String = s.chars().filter(|c| *c != ':').collect();
        if digits.is_empty() || digits.len() > 40 {
            return Err(SerialParseError(s.to_string()));
        }
        if digits.len() % 2 == 1 {
            digits.insert(0, '0');
        }
        hex::decode(&digits)
            .map(|b| Serial::from_bytes(&b))
            .map_err(|_| SerialParseError(s.to_string()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl serde::Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_fixed_length_and_distinct() {
        let a = Serial::random();
        let b = Serial::random();
        assert_ne!(a, b);
        for s in [&a, &b] {
            assert_eq!(s.as_bytes().len(), SERIAL_LEN);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
        }
    }

    #[test]
    fn hex_round_trips_and_accepts_colons() {
        let s = Serial::random();
        assert_eq!(s.to_hex().parse::<Serial>().unwrap(), s);
        assert_eq!("0A:0b".parse::<Serial>().unwrap().to_hex(), "0a0b");
        assert_eq!("00ff".parse::<Serial>().unwrap().as_bytes(), &[0xff]);
        assert!("xyz".parse::<Serial>().is_err());
        assert!("".parse::<Serial>().is_err());
    }
}
