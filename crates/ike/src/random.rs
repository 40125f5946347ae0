//! Where SPIs and nonces come from. The key exchange's private keys come
//! from aws-lc's own generator inside `KeyExchange::generate`.

/// The random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("random source failed")]
pub struct RandomError;

/// A source of unpredictable bytes. Tests may inject a seeded one to make
/// SPIs and nonces reproducible; production uses [`SystemRandom`].
pub trait Random {
    /// Fills `buf`.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// aws-lc's DRBG.
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl SystemRandom {
    /// The system generator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Random for SystemRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::SecureRandom::fill(&self.0, buf).map_err(|_| RandomError)
    }
}
