//! Page tokens shaped like Google's.
//!
//! Google's search/list tokens are base64url (no padding) protobuf bytes:
//! field 1 = offset (varint), field 2 = direction (0 next, 1 previous), so
//! `CAUQAA` is "offset 5, forward" and `CAUQAQ` "page ending at 5". Clients
//! must treat them as opaque; mimicking the real shape keeps anyone from
//! depending on a fake-only format.

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    encode_with(bytes, URL_SAFE, false)
}

pub(crate) fn base64_standard(bytes: &[u8]) -> String {
    encode_with(bytes, STANDARD, true)
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = URL_SAFE.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Which way a token points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Next,
    Prev,
}

/// `offset` is where the next page starts (Next) or where the previous page ends (Prev).
pub fn encode(offset: usize, direction: Direction) -> String {
    let mut bytes = vec![0x08];
    let mut v = offset as u64;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            bytes.push(b);
            break;
        }
        bytes.push(b | 0x80);
    }
    bytes.push(0x10);
    bytes.push(if direction == Direction::Prev { 1 } else { 0 });
    base64url(&bytes)
}

pub fn decode(token: &str) -> Option<(usize, Direction)> {
    let bytes = base64url_decode(token)?;
    let mut it = bytes.into_iter();
    if it.next()? != 0x08 {
        return None;
    }
    let mut offset: u64 = 0;
    let mut shift = 0;
    loop {
        let b = it.next()?;
        if shift > 56 {
            return None;
        }
        offset |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    if it.next()? != 0x10 {
        return None;
    }
    let dir = match it.next()? {
        0 => Direction::Next,
        1 => Direction::Prev,
        _ => return None,
    };
    if it.next().is_some() {
        return None;
    }
    Some((usize::try_from(offset).ok()?, dir))
}

/// One page of a result list, with the tokens to its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub end: usize,
    pub next: Option<String>,
    pub prev: Option<String>,
}

/// Cuts `[0, total)` into the page selected by `token`.
pub fn page(total: usize, max_results: usize, token: Option<(usize, Direction)>) -> Page {
    let (start, end) = match token {
        None => (0, max_results.min(total)),
        Some((o, Direction::Next)) => {
            let s = o.min(total);
            (s, (s + max_results).min(total))
        }
        Some((o, Direction::Prev)) => {
            let e = o.min(total);
            (e.saturating_sub(max_results), e)
        }
    };
    let next = (end < total && max_results > 0).then(|| encode(end, Direction::Next));
    let prev = (start > 0).then(|| encode(start, Direction::Prev));
    Page {
        start,
        end,
        next,
        prev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_googles_tokens() {
        assert_eq!(encode(5, Direction::Next), "CAUQAA");
        assert_eq!(encode(5, Direction::Prev), "CAUQAQ");
        assert_eq!(encode(10, Direction::Next), "CAoQAA");
        assert_eq!(encode(25, Direction::Next), "CBkQAA");
        assert_eq!(encode(50, Direction::Next), "CDIQAA");
        assert_eq!(encode(25, Direction::Prev), "CBkQAQ");
        for o in [0, 1, 127, 128, 300, 100_000] {
            for d in [Direction::Next, Direction::Prev] {
                assert_eq!(decode(&encode(o, d)), Some((o, d)));
            }
        }
        assert_eq!(decode("nonsense!"), None);
        assert_eq!(decode("CAUQAg"), None);
    }

    #[test]
    fn base64_standard_matches_playlist_item_ids() {
        assert_eq!(
            base64_standard(b"UU_x5XG1OV2P6uZZ5FSM9Ttw.UZ4n1n13crI"),
            "VVVfeDVYRzFPVjJQNnVaWjVGU005VHR3LlVaNG4xbjEzY3JJ"
        );
    }
}
