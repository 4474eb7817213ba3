//! A minimal DER reader: just enough to read an X.509 certificate's subject, validity and public key, and the
//! PKCS#1 / PKCS#8 (also PBES2-encrypted) private key containers. Every length is checked against the input.

/// One DER element: its tag byte, its contents, and the whole encoding (tag, length and contents).
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;

/// The first element of `input` and what follows it; `None` when the input is not DER.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // High tag numbers never occur in the structures read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Some((Tlv { tag, content, raw: &input[..header + len] }, after))
}

/// The single element `input` holds, of the expected tag.
pub fn expect(input: &[u8], tag: u8) -> Option<Tlv<'_>> {
    let (tlv, rest) = read(input)?;
    (tlv.tag == tag && rest.is_empty()).then_some(tlv)
}

/// The elements of a constructed value, in order.
pub fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (tlv, after) = read(rest)?;
        out.push(tlv);
        rest = after;
    }
    Some(out)
}

/// An INTEGER's magnitude without the sign-padding zero bytes.
pub fn unsigned(content: &[u8]) -> &[u8] {
    let zeros = content.iter().take_while(|b| **b == 0).count();
    &content[zeros.min(content.len().saturating_sub(1))..]
}

/// A small non-negative INTEGER.
pub fn small_uint(tlv: &Tlv<'_>) -> Option<u32> {
    if tlv.tag != INTEGER || tlv.content.is_empty() || tlv.content[0] & 0x80 != 0 {
        return None;
    }
    let magnitude = unsigned(tlv.content);
    if magnitude.len() > 4 {
        return None;
    }
    Some(magnitude.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// Encode a length and contents under `tag`.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let long = encode(OCTET_STRING, &[7u8; 300]);
        let (tlv, rest) = read(&long).unwrap();
        assert_eq!((tlv.tag, tlv.content.len(), rest.len(), tlv.raw.len()), (OCTET_STRING, 300, 0, long.len()));
        assert!(read(&[0x30, 0x82, 0x01]).is_none());
        assert!(read(&[0x30, 0x05, 0x00]).is_none());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = children(&bytes);
        }
    }
}
