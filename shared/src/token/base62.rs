//! Base62 over byte strings: the text form of every link token, signed or legacy.
//!
//! Owned by [`crate::token`]; the signed codec and the legacy decoder both call it. It is a
//! pure, allocation-bounded conversion and must never accept input longer than
//! [`MAX_ENCODED_LEN`] — the length check runs before any big-number work, so a hostile
//! multi-megabyte path costs nothing.
//!
//! The bytes are read as one big-endian unsigned number written with the alphabet
//! `0-9a-zA-Z` (most significant digit first). A number alone cannot say how many leading
//! zero bytes it had, so each leading `0x00` byte is written as one leading `'0'` character
//! and the rest of the number is written without leading zeros (the Base58Check convention).
//! That makes the mapping between byte strings and strings a bijection: every string decodes
//! to exactly one byte string and re-encodes to itself, so no two spellings name the same
//! token. The empty byte string is the empty string. The older bots' legacy tokens never
//! start with a zero byte (zlib output starts with `0x78`) so they read the same either way;
//! signed tokens start with their non-zero format version.

/// The 62 digits in value order.
pub const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Longest string [`decode`] accepts: enough for 95 bytes, beyond any token we read.
pub const MAX_ENCODED_LEN: usize = 128;

/// 62^5, the largest power of 62 below 2^32: dividing by it yields five digits per pass
/// while every intermediate (`remainder * 256 + byte`) still fits a `u64`.
const GROUP_BASE: u64 = 916_132_832;
const GROUP_DIGITS: usize = 5;

/// Why a string is not base62.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base62Error {
    #[error("{len} characters is longer than the {max} accepted")]
    TooLong { len: usize, max: usize },
    #[error("byte {found:#04x} at position {position} is not in 0-9a-zA-Z")]
    BadCharacter { position: usize, found: u8 },
}

/// Writes `bytes` as base62 (see the module doc for leading zero bytes).
pub fn encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut number = bytes[zeros..].to_vec();
    // Least significant digit first; reversed at the end.
    let mut digits: Vec<u8> = Vec::with_capacity(number.len() * 4 / 3 + GROUP_DIGITS);
    let mut start = 0;
    while start < number.len() {
        let mut remainder: u64 = 0;
        for byte in &mut number[start..] {
            let acc = (remainder << 8) | u64::from(*byte);
            // acc < GROUP_BASE * 256, so the quotient fits in a byte.
            *byte = (acc / GROUP_BASE) as u8;
            remainder = acc % GROUP_BASE;
        }
        for _ in 0..GROUP_DIGITS {
            digits.push((remainder % 62) as u8);
            remainder /= 62;
        }
        while start < number.len() && number[start] == 0 {
            start += 1;
        }
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('0', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(ALPHABET[usize::from(d)])),
    );
    out
}

/// Reads a base62 string back into bytes, refusing anything over [`MAX_ENCODED_LEN`]
/// characters before looking at it.
pub fn decode(text: &str) -> Result<Vec<u8>, Base62Error> {
    decode_bounded(text, MAX_ENCODED_LEN)
}

/// [`decode`] with a tighter length limit (`max` is capped at [`MAX_ENCODED_LEN`]).
pub fn decode_bounded(text: &str, max: usize) -> Result<Vec<u8>, Base62Error> {
    let max = max.min(MAX_ENCODED_LEN);
    let input = text.as_bytes();
    if input.len() > max {
        return Err(Base62Error::TooLong {
            len: input.len(),
            max,
        });
    }
    let mut values = [0u8; MAX_ENCODED_LEN];
    for (position, &found) in input.iter().enumerate() {
        values[position] =
            digit_value(found).ok_or(Base62Error::BadCharacter { position, found })?;
    }
    let values = &values[..input.len()];
    let zeros = values.iter().take_while(|&&v| v == 0).count();

    // Little-endian bytes of the number, grown as needed.
    let mut number: Vec<u8> = Vec::with_capacity(input.len() * 3 / 4 + 1);
    for group in values[zeros..].chunks(GROUP_DIGITS) {
        let mut multiplier: u64 = 1;
        let mut addend: u64 = 0;
        for &v in group {
            multiplier *= 62;
            addend = addend * 62 + u64::from(v);
        }
        let mut carry = addend;
        for byte in &mut number {
            let acc = u64::from(*byte) * multiplier + carry;
            *byte = acc as u8; // keep the low byte, carry the rest
            carry = acc >> 8;
        }
        while carry > 0 {
            number.push(carry as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(number.iter().rev());
    Ok(out)
}

fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'z' => Some(c - b'a' + 10),
        b'A'..=b'Z' => Some(c - b'A' + 36),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0]), "0");
        assert_eq!(encode(&[0, 0]), "00");
        assert_eq!(encode(&[61]), "Z");
        assert_eq!(encode(&[62]), "10");
        assert_eq!(encode(&[1, 0]), "48"); // 256 = 4*62 + 8
        assert_eq!(encode(&[0, 1, 0]), "048");
        assert_eq!(encode(&[0xff; 8]), "lYGhA16ahyf"); // u64::MAX
        assert_eq!(decode("lYGhA16ahyf").unwrap(), vec![0xff; 8]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode("000").unwrap(), vec![0, 0, 0]);
    }

    #[test]
    fn round_trips_every_length_up_to_64() {
        for len in 0..=64usize {
            let patterns: [Vec<u8>; 4] = [
                vec![0u8; len],
                vec![0xffu8; len],
                (0..len).map(|i| (i * 37 + 11) as u8).collect(),
                (0..len)
                    .map(|i| if i < len / 2 { 0 } else { (i as u8) | 1 })
                    .collect(),
            ];
            for bytes in patterns {
                let text = encode(&bytes);
                assert!(text.len() <= MAX_ENCODED_LEN);
                assert_eq!(decode(&text).unwrap(), bytes, "length {len}, text {text}");
            }
        }
    }

    #[test]
    fn rejects_characters_outside_the_alphabet() {
        for bad in ["-", "abc_d", "ab cd", "é", "a/b", "a+b", "a=b"] {
            let err = decode(bad).unwrap_err();
            assert!(
                matches!(err, Base62Error::BadCharacter { .. }),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(
            decode("ab-c").unwrap_err(),
            Base62Error::BadCharacter {
                position: 2,
                found: b'-'
            }
        );
    }

    #[test]
    fn rejects_overlong_input_before_reading_it() {
        let long = "z".repeat(MAX_ENCODED_LEN + 1);
        assert_eq!(
            decode(&long).unwrap_err(),
            Base62Error::TooLong {
                len: MAX_ENCODED_LEN + 1,
                max: MAX_ENCODED_LEN
            }
        );
        // Even a bad character is not looked at once the length is over.
        let huge = "!".repeat(1 << 20);
        assert!(matches!(decode(&huge), Err(Base62Error::TooLong { .. })));
        assert!(matches!(
            decode_bounded("abcdef", 5),
            Err(Base62Error::TooLong { len: 6, max: 5 })
        ));
        assert!(decode(&"z".repeat(MAX_ENCODED_LEN)).is_ok());
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..=90)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text).unwrap(), bytes);
        }

        #[test]
        fn strings_round_trip(text in "[0-9a-zA-Z]{0,128}") {
            // Bijection: every valid string is the encoding of what it decodes to.
            let bytes = decode(&text).unwrap();
            prop_assert_eq!(encode(&bytes), text);
        }
    }
}
