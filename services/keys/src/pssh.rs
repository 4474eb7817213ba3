//! Protection System Specific Header boxes (ISO/IEC 23001-7 `pssh`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::Kid;

/// W3C "common" system id (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`), which ClearKey reads.
pub const COMMON_SYSTEM_ID: [u8; 16] =
    [0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b];

/// A `pssh` box. Version 1 lists the KIDs in the box header; version 0 carries them only inside `data`.
pub fn pssh_box(system_id: &[u8; 16], kids: Option<&[Kid]>, data: &[u8]) -> Vec<u8> {
    let kid_bytes = kids.map_or(0, |k| 4 + 16 * k.len());
    let size = 8 + 4 + 16 + kid_bytes + 4 + data.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b"pssh");
    let version: u8 = if kids.is_some() { 1 } else { 0 };
    out.extend_from_slice(&[version, 0, 0, 0]);
    out.extend_from_slice(system_id);
    if let Some(kids) = kids {
        out.extend_from_slice(&u32::try_from(kids.len()).unwrap_or(u32::MAX).to_be_bytes());
        for kid in kids {
            out.extend_from_slice(&kid.0);
        }
    }
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The common-system PSSH (v1, KIDs in the header, no data), base64.
pub fn common_pssh_base64(kids: &[Kid]) -> String {
    STANDARD.encode(pssh_box(&COMMON_SYSTEM_ID, Some(kids), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_box_layout() {
        let kid = Kid::parse_hex("2f05477fc24bb4faefd86517156daffc").unwrap();
        let bytes = pssh_box(&COMMON_SYSTEM_ID, Some(&[kid]), &[]);
        assert_eq!(bytes.len(), 52);
        assert_eq!(&bytes[0..4], &52u32.to_be_bytes());
        assert_eq!(&bytes[4..8], b"pssh");
        assert_eq!(bytes[8], 1);
        assert_eq!(&bytes[12..28], &COMMON_SYSTEM_ID);
        assert_eq!(&bytes[28..32], &1u32.to_be_bytes());
        assert_eq!(&bytes[32..48], &kid.0);
        assert_eq!(&bytes[48..52], &0u32.to_be_bytes());
    }
}
