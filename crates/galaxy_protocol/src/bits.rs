//! Bit-level writer and reader for the packed unit-delta payload.
//!
//! Bits are written least-significant first into little-endian bytes. The
//! reader never reads past its slice and reports a typed [`BitError`] instead.

/// Why a bit stream could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BitError {
    /// The stream ended in the middle of a field.
    #[error("bit stream ended early")]
    UnexpectedEnd,
    /// A variable-length integer did not fit in 64 bits.
    #[error("variable-length integer longer than 64 bits")]
    VarintOverflow,
    /// Bits were left after the last field (other than zero padding).
    #[error("{0} unread bits after the last field")]
    TrailingBits(usize),
}

/// Appends bit fields to a growable buffer; can roll back to an earlier length.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.bits = 0;
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bits
    }

    /// Bytes the stream occupies (bits rounded up).
    pub fn byte_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// The written bytes; unused bits of the last byte are zero.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Drops everything written after `bit_len` bits.
    pub fn truncate(&mut self, bit_len: usize) {
        if bit_len >= self.bits {
            return;
        }
        self.bits = bit_len;
        self.bytes.truncate(bit_len.div_ceil(8));
        let used = bit_len % 8;
        if let (1..=7, Some(last)) = (used, self.bytes.last_mut()) {
            *last &= (1u8 << used) - 1;
        }
    }

    /// Writes the low `n` bits of `value` (`n <= 64`).
    pub fn write_bits(&mut self, mut value: u64, mut n: u32) {
        debug_assert!(n <= 64);
        if n < 64 {
            value &= (1u64 << n) - 1;
        }
        while n > 0 {
            let offset = (self.bits % 8) as u32;
            if offset == 0 {
                self.bytes.push(0);
            }
            let take = (8 - offset).min(n);
            let chunk = (value & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << offset;
            }
            value = value.checked_shr(take).unwrap_or(0);
            n -= take;
            self.bits += take as usize;
        }
    }

    /// Writes one bit.
    pub fn write_bool(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes `value` as groups of `chunk` bits, each followed by a continue bit.
    pub fn write_varint(&mut self, mut value: u64, chunk: u32) {
        loop {
            self.write_bits(value, chunk);
            value = value.checked_shr(chunk).unwrap_or(0);
            self.write_bool(value != 0);
            if value == 0 {
                return;
            }
        }
    }

    /// Writes a signed value as a zigzag [`BitWriter::write_varint`].
    pub fn write_signed(&mut self, value: i64, chunk: u32) {
        self.write_varint(zigzag(value), chunk);
    }
}

/// Reads bit fields written by [`BitWriter`].
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bits not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }

    /// Reads `n <= 64` bits.
    pub fn read_bits(&mut self, n: u32) -> Result<u64, BitError> {
        debug_assert!(n <= 64);
        if (n as usize) > self.remaining() {
            return Err(BitError::UnexpectedEnd);
        }
        let mut out = 0u64;
        let mut got = 0u32;
        while got < n {
            let byte = self.bytes[self.pos / 8];
            let offset = (self.pos % 8) as u32;
            let take = (8 - offset).min(n - got);
            let chunk = (u64::from(byte) >> offset) & ((1u64 << take) - 1);
            out |= chunk << got;
            got += take;
            self.pos += take as usize;
        }
        Ok(out)
    }

    /// Reads one bit.
    pub fn read_bool(&mut self) -> Result<bool, BitError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads a [`BitWriter::write_varint`] value, refusing more than 64 bits.
    pub fn read_varint(&mut self, chunk: u32) -> Result<u64, BitError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let part = self.read_bits(chunk)?;
            let shifted = part << shift;
            if shifted >> shift != part {
                return Err(BitError::VarintOverflow);
            }
            value |= shifted;
            if !self.read_bool()? {
                return Ok(value);
            }
            shift += chunk;
            if shift >= 64 {
                return Err(BitError::VarintOverflow);
            }
        }
    }

    /// Reads a zigzag [`BitReader::read_varint`] value.
    pub fn read_signed(&mut self, chunk: u32) -> Result<i64, BitError> {
        Ok(unzigzag(self.read_varint(chunk)?))
    }

    /// Succeeds if only zero padding (< 8 bits) is left.
    pub fn finish(&self) -> Result<(), BitError> {
        let left = self.remaining();
        let tail_is_zero = match (left, self.bytes.last()) {
            (0, _) => true,
            (1..=7, Some(&last)) => last >> (8 - left) == 0,
            _ => false,
        };
        if tail_is_zero {
            Ok(())
        } else {
            Err(BitError::TrailingBits(left))
        }
    }
}

/// Maps signed to unsigned so small magnitudes stay small: 0, -1, 1, -2, ...
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zigzag_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn overlong_varint_is_refused() {
        let mut w = BitWriter::new();
        for _ in 0..40 {
            w.write_bits(0b111, 3);
            w.write_bool(true);
        }
        assert_eq!(
            BitReader::new(w.as_bytes()).read_varint(3),
            Err(BitError::VarintOverflow)
        );
    }

    #[test]
    fn truncate_rolls_back() {
        let mut w = BitWriter::new();
        w.write_bits(0b101, 3);
        let mark = w.bit_len();
        w.write_bits(u64::MAX, 64);
        w.truncate(mark);
        w.write_bits(0b11, 2);
        let mut r = BitReader::new(w.as_bytes());
        assert_eq!(r.read_bits(3), Ok(0b101));
        assert_eq!(r.read_bits(2), Ok(0b11));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn trailing_bits_are_refused() {
        let mut r = BitReader::new(&[0b0000_0001, 0xff]);
        assert_eq!(r.read_bits(1), Ok(1));
        assert!(r.finish().is_err());
        r.read_bits(7).unwrap();
        assert!(r.finish().is_err());
        let mut r = BitReader::new(&[0b0000_0001]);
        r.read_bits(1).unwrap();
        assert_eq!(r.finish(), Ok(()));
        assert!(BitReader::new(&[0b1000_0000]).finish().is_err());
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec((any::<u64>(), 1u32..=64, 1u32..=9, any::<i64>()), 0..40)) {
            let mut w = BitWriter::new();
            for &(v, n, chunk, s) in &fields {
                w.write_bits(v, n);
                w.write_varint(v, chunk);
                w.write_signed(s, chunk);
            }
            let mut r = BitReader::new(w.as_bytes());
            for &(v, n, chunk, s) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
                prop_assert_eq!(r.read_bits(n).unwrap(), v & mask);
                prop_assert_eq!(r.read_varint(chunk).unwrap(), v);
                prop_assert_eq!(r.read_signed(chunk).unwrap(), s);
            }
            prop_assert_eq!(r.finish(), Ok(()));
        }
    }
}
