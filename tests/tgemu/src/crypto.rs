//! Server-side MTProto 2.0 message encryption: the mirror image of grammers-crypto.
//!
//! Clients encrypt with x = 0, so the server decrypts with x = 0; the server encrypts its
//! replies with x = 8. Pure functions on caller-owned buffers: the connection writer hands
//! in its reused output buffer and the plaintext is padded and encrypted in place (one
//! SHA-256 pass and one AES-IGE pass per message, no copy). Never panics on hostile input:
//! a bad frame gives a [`CryptoError`].

use aes::Aes256;
use aes::cipher::consts::U16;
use aes::cipher::inout::InOut;
use aes::cipher::{
    Block, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockCipherEncBackend,
    BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Why an incoming encrypted frame was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("encrypted frame of {0} bytes is not 24 + a multiple of 16")]
    BadLength(usize),
    #[error("frame names auth key id {0:#018x}, which this emulator does not know")]
    UnknownAuthKey(u64),
    #[error("msg_key does not match the decrypted plaintext")]
    MsgKeyMismatch,
}

/// A provisioned 256-byte authorisation key with its precomputed id.
#[derive(Clone)]
pub struct ServerKey {
    pub data: [u8; 256],
    pub id: u64,
}

impl ServerKey {
    pub fn new(data: [u8; 256]) -> Self {
        Self {
            id: key_id(&data),
            data,
        }
    }
}

/// auth_key_id = the lower 64 bits of SHA1(auth_key), i.e. bytes 12..20, little endian.
pub fn key_id(key: &[u8; 256]) -> u64 {
    let digest = Sha1::digest(key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[12..20]);
    u64::from_le_bytes(id)
}

/// Reads the auth key id of an encrypted frame (0 means an unencrypted message).
pub fn frame_key_id(frame: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = frame.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

fn kdf(key: &[u8; 256], msg_key: &[u8; 16], x: usize) -> ([u8; 32], [u8; 32]) {
    let a = Sha256::new()
        .chain_update(msg_key)
        .chain_update(&key[x..x + 36])
        .finalize();
    let b = Sha256::new()
        .chain_update(&key[40 + x..40 + x + 36])
        .chain_update(msg_key)
        .finalize();
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..32]);
    let mut aes_iv = [0u8; 32];
    aes_iv[..8].copy_from_slice(&b[..8]);
    aes_iv[8..24].copy_from_slice(&a[8..24]);
    aes_iv[24..].copy_from_slice(&b[24..32]);
    (aes_key, aes_iv)
}

fn msg_key_for(key: &[u8; 256], x: usize, plaintext: &[u8]) -> [u8; 16] {
    let large = Sha256::new()
        .chain_update(&key[88 + x..88 + x + 32])
        .chain_update(plaintext)
        .finalize();
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&large[8..24]);
    msg_key
}

/// Decrypts a client frame (`auth_key_id ‖ msg_key ‖ ciphertext`) in place and returns the
/// plaintext (`salt ‖ session_id ‖ message ‖ padding`).
pub fn decrypt_from_client<'a>(
    key: &ServerKey,
    frame: &'a mut [u8],
) -> Result<&'a mut [u8], CryptoError> {
    if frame.len() < 24 + 32 || !(frame.len() - 24).is_multiple_of(16) {
        return Err(CryptoError::BadLength(frame.len()));
    }
    let id = frame_key_id(frame).unwrap_or(0);
    if id != key.id {
        return Err(CryptoError::UnknownAuthKey(id));
    }
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&frame[8..24]);
    let (aes_key, aes_iv) = kdf(&key.data, &msg_key, 0);
    let body = &mut frame[24..];
    ige_decrypt(body, &aes_key, &aes_iv);
    if msg_key_for(&key.data, 0, body) != msg_key {
        return Err(CryptoError::MsgKeyMismatch);
    }
    Ok(body)
}

/// Padding length for a plaintext of `len` bytes: 12..=27 bytes, total a multiple of 16.
pub fn padding_len(len: usize) -> usize {
    12 + (16 - ((len + 12) % 16)) % 16
}

/// Encrypts a server message in place. `buf[start..start + 24]` is reserved for
/// `auth_key_id ‖ msg_key`, and the plaintext runs from `start + 24` to the end of `buf`.
/// Pads the plaintext (buf grows), computes msg_key with x = 8 and encrypts.
pub fn encrypt_for_client(key: &ServerKey, buf: &mut Vec<u8>, start: usize, pad_seed: u64) {
    let plain_len = buf.len() - start - 24;
    let pad = padding_len(plain_len);
    let pad_bytes = pad_seed.to_le_bytes();
    buf.extend((0..pad).map(|i| pad_bytes[i % 8] ^ (i as u8)));
    let msg_key = msg_key_for(&key.data, 8, &buf[start + 24..]);
    let (aes_key, aes_iv) = kdf(&key.data, &msg_key, 8);
    ige_encrypt(&mut buf[start + 24..], &aes_key, &aes_iv);
    buf[start..start + 8].copy_from_slice(&key.id.to_le_bytes());
    buf[start + 8..start + 24].copy_from_slice(&msg_key);
}

/// AES-256-IGE over a whole buffer, fetching the AES backend once (not per block) so
/// AES-NI runs without per-block dispatch. `buffer.len()` must be a multiple of 16.
pub fn ige_encrypt(buffer: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    Aes256::new(key.into()).encrypt_with_backend(IgeEncrypt { buffer, iv });
}

/// The inverse of [`ige_encrypt`].
pub fn ige_decrypt(buffer: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    Aes256::new(key.into()).decrypt_with_backend(IgeDecrypt { buffer, iv });
}

struct IgeEncrypt<'a> {
    buffer: &'a mut [u8],
    iv: &'a [u8; 32],
}

impl BlockSizeUser for IgeEncrypt<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for IgeEncrypt<'_> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut prev_cipher = block_from(&self.iv[..16]);
        let mut prev_plain = block_from(&self.iv[16..]);
        for chunk in self.buffer.chunks_exact_mut(16) {
            let plain = block_from(chunk);
            let mut block = xor(&plain, &prev_cipher);
            backend.encrypt_block(InOut::from(&mut block));
            let cipher = xor(&block, &prev_plain);
            chunk.copy_from_slice(&cipher);
            prev_cipher = cipher;
            prev_plain = plain;
        }
    }
}

struct IgeDecrypt<'a> {
    buffer: &'a mut [u8],
    iv: &'a [u8; 32],
}

impl BlockSizeUser for IgeDecrypt<'_> {
    type BlockSize = U16;
}

impl BlockCipherDecClosure for IgeDecrypt<'_> {
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        let mut prev_cipher = block_from(&self.iv[..16]);
        let mut prev_plain = block_from(&self.iv[16..]);
        for chunk in self.buffer.chunks_exact_mut(16) {
            let cipher = block_from(chunk);
            let mut block = xor(&cipher, &prev_plain);
            backend.decrypt_block(InOut::from(&mut block));
            let plain = xor(&block, &prev_cipher);
            chunk.copy_from_slice(&plain);
            prev_cipher = cipher;
            prev_plain = plain;
        }
    }
}

#[inline(always)]
fn block_from(bytes: &[u8]) -> Block<Aes256> {
    let mut block = Block::<Aes256>::default();
    block.copy_from_slice(&bytes[..16]);
    block
}

#[inline(always)]
fn xor(a: &Block<Aes256>, b: &Block<Aes256>) -> Block<Aes256> {
    let x = u128::from_ne_bytes(a.as_slice().try_into().unwrap_or([0; 16]))
        ^ u128::from_ne_bytes(b.as_slice().try_into().unwrap_or([0; 16]));
    let mut out = Block::<Aes256>::default();
    out.copy_from_slice(&x.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_crypto::{AuthKey, DequeBuffer, decrypt_data_v2, encrypt_data_v2};

    fn test_key() -> [u8; 256] {
        let mut key = [0u8; 256];
        key.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * 7 + 3) as u8);
        key
    }

    #[test]
    fn ige_matches_grammers() {
        let (key, iv) = ([5u8; 32], [9u8; 32]);
        let plain: Vec<u8> = (0..4096u32).map(|i| (i * 31) as u8).collect();
        let mut ours = plain.clone();
        let mut theirs = plain.clone();
        ige_encrypt(&mut ours, &key, &iv);
        grammers_crypto::aes::ige_encrypt(&mut theirs, &key, &iv);
        assert_eq!(ours, theirs);
        ige_decrypt(&mut ours, &key, &iv);
        assert_eq!(ours, plain);
    }

    #[test]
    fn key_id_matches_grammers_frames() {
        let key = test_key();
        let mut buffer = DequeBuffer::with_capacity(64, 32);
        buffer.extend([1u8; 32]);
        encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(key));
        assert_eq!(frame_key_id(&buffer[..]), Some(key_id(&key)));
    }

    #[test]
    fn decrypts_what_a_grammers_client_encrypts() {
        let key = ServerKey::new(test_key());
        let plain: Vec<u8> = (0..100u8).collect();
        let mut buffer = DequeBuffer::with_capacity(256, 64);
        buffer.extend(plain.iter().copied());
        encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(key.data));
        let mut frame = buffer[..].to_vec();
        let got = decrypt_from_client(&key, &mut frame).expect("valid frame");
        assert_eq!(&got[..plain.len()], &plain[..]);
    }

    #[test]
    fn grammers_client_decrypts_what_we_encrypt() {
        let key = ServerKey::new(test_key());
        for len in [32usize, 48, 100, 4096 + 20] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = vec![0u8; 3 + 24];
            buf.extend_from_slice(&plain);
            encrypt_for_client(&key, &mut buf, 3, 77);
            let mut frame = buf[3..].to_vec();
            let got = decrypt_data_v2(&mut frame, &AuthKey::from_bytes(key.data))
                .expect("grammers accepts it");
            assert_eq!(&got[..len], &plain[..]);
            let padding = got.len() - len;
            assert!((12..=1024).contains(&padding), "padding {padding}");
        }
    }

    #[test]
    fn rejects_tampering_and_garbage() {
        let key = ServerKey::new(test_key());
        let mut buffer = DequeBuffer::with_capacity(256, 64);
        buffer.extend([7u8; 64]);
        encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(key.data));
        let mut frame = buffer[..].to_vec();
        frame[40] ^= 1;
        assert_eq!(
            decrypt_from_client(&key, &mut frame).err(),
            Some(CryptoError::MsgKeyMismatch)
        );
        assert!(matches!(
            decrypt_from_client(&key, &mut [0u8; 13]),
            Err(CryptoError::BadLength(13))
        ));
        let mut other = [0u8; 72];
        assert!(matches!(
            decrypt_from_client(&key, &mut other),
            Err(CryptoError::UnknownAuthKey(0))
        ));
    }
}
