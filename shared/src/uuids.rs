//! UUIDs for new documents and `/_uuids`, CouchDB's `sequential` algorithm:
//! a random 26-hex prefix shared by a run of ids and a 6-hex suffix that
//! grows by a random step, so new ids cluster in the id index instead of
//! landing at random pages.

use std::cell::RefCell;

struct Sequential {
    prefix: String,
    counter: u32,
}

thread_local! {
    static STATE: RefCell<Option<Sequential>> = const { RefCell::new(None) };
}

fn random_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// 32 random hex characters (salts, instance tags, secrets).
pub fn random_hex() -> String {
    random_bytes().iter().map(|x| format!("{x:02x}")).collect()
}

fn new_prefix() -> String {
    random_hex()[..26].to_string()
}

/// The next id: 32 lowercase hex characters.
pub fn next() -> String {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let step = u32::from(random_bytes()[0]) % 0xfe + 1;
        let st = s.get_or_insert_with(|| Sequential {
            prefix: new_prefix(),
            counter: u32::from_be_bytes([0, random_bytes()[1], random_bytes()[2], 0]) >> 8,
        });
        st.counter += step;
        if st.counter >= 0x00ff_f000 {
            st.prefix = new_prefix();
            st.counter = step;
        }
        format!("{}{:06x}", st.prefix, st.counter)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_hex_ids() {
        let ids: Vec<String> = (0..100).map(|_| next()).collect();
        for w in ids.windows(2) {
            assert_eq!(w[0].len(), 32);
            assert!(w[0].chars().all(|c| c.is_ascii_hexdigit()));
            assert!(w[0] < w[1] || w[0][..26] != w[1][..26]);
        }
    }
}
