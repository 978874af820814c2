//! The idle worker slots, walked round-robin from a cursor.
//!
//! A bitmask, one bit per slot, searched a word at a time from the slot after the
//! last one chosen: picking the next idle slot costs one or two word operations
//! for up to 64 workers, never a look at every worker.

#[derive(Debug)]
pub(crate) struct IdleSet {
    words: Vec<u64>,
    slots: usize,
    cursor: usize,
    count: usize,
}

impl IdleSet {
    /// A set of `slots` slots, none idle.
    pub(crate) fn new(slots: usize) -> Self {
        IdleSet {
            words: vec![0; slots.div_ceil(64)],
            slots,
            cursor: 0,
            count: 0,
        }
    }

    /// Makes room for `slots` slots (never fewer than it has); the new
    /// ones are not idle.
    pub(crate) fn grow(&mut self, slots: usize) {
        if slots > self.slots {
            self.words.resize(slots.div_ceil(64), 0);
            self.slots = slots;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.words[slot / 64] & (1 << (slot % 64)) != 0
    }

    pub(crate) fn insert(&mut self, slot: usize) {
        if !self.contains(slot) {
            self.words[slot / 64] |= 1 << (slot % 64);
            self.count += 1;
        }
    }

    pub(crate) fn remove(&mut self, slot: usize) -> bool {
        let present = self.contains(slot);
        if present {
            self.words[slot / 64] &= !(1 << (slot % 64));
            self.count -= 1;
        }
        present
    }

    /// Takes the first idle slot at or after the cursor (wrapping), and moves the
    /// cursor past it.
    pub(crate) fn take_next(&mut self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        if let [bits] = self.words[..] {
            // Up to 64 slots, the common case: the first idle slot at or
            // after the cursor, else the first one from the start.
            let after_cursor = bits & (!0u64 << self.cursor);
            let pick = if after_cursor != 0 {
                after_cursor
            } else {
                bits
            };
            let slot = pick.trailing_zeros() as usize;
            return Some(self.take(slot));
        }
        let start_word = self.cursor / 64;
        let n = self.words.len();
        // The start word is looked at twice: first from the cursor's bit upwards,
        // last (after wrapping) for the bits below it.
        for step in 0..=n {
            let w = (start_word + step) % n;
            let mut bits = self.words[w];
            if step == 0 {
                bits &= !0u64 << (self.cursor % 64);
            }
            if bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                return Some(self.take(slot));
            }
        }
        None
    }

    /// Takes an idle slot, and moves the cursor past it.
    fn take(&mut self, slot: usize) -> usize {
        self.words[slot / 64] &= !(1 << (slot % 64));
        self.count -= 1;
        self.cursor = (slot + 1) % self.slots;
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_idle(slots: usize) -> IdleSet {
        let mut set = IdleSet::new(slots);
        (0..slots).for_each(|s| set.insert(s));
        set
    }

    #[test]
    fn all_idle_slots_are_taken_in_order() {
        let mut set = all_idle(4);
        let taken: Vec<_> = std::iter::from_fn(|| set.take_next()).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
    }

    #[test]
    fn the_cursor_wraps_and_skips_busy_slots() {
        let mut set = all_idle(4);
        assert_eq!(set.take_next(), Some(0));
        assert_eq!(set.take_next(), Some(1));
        set.insert(0);
        // The cursor is at 2: 2 and 3 come before 0 again.
        assert_eq!(set.take_next(), Some(2));
        assert_eq!(set.take_next(), Some(3));
        assert_eq!(set.take_next(), Some(0));
        assert_eq!(set.take_next(), None);
    }

    #[test]
    fn a_slot_freed_behind_the_cursor_waits_its_turn() {
        let mut set = all_idle(3);
        assert_eq!(set.take_next(), Some(0));
        set.insert(0);
        assert_eq!(set.take_next(), Some(1));
        assert_eq!(set.take_next(), Some(2));
        assert_eq!(set.take_next(), Some(0));
    }

    #[test]
    fn works_across_word_boundaries() {
        let mut set = IdleSet::new(130);
        set.insert(3);
        set.insert(64);
        set.insert(129);
        assert_eq!(set.take_next(), Some(3));
        assert_eq!(set.take_next(), Some(64));
        assert_eq!(set.take_next(), Some(129));
        set.insert(5);
        assert_eq!(set.take_next(), Some(5));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn takes_the_same_slots_as_a_walk_over_every_slot() {
        // A plain model: look at every slot from the cursor on.
        fn walk(idle: &[bool], cursor: usize) -> Option<usize> {
            (0..idle.len())
                .map(|step| (cursor + step) % idle.len())
                .find(|&slot| idle[slot])
        }
        for slots in [1, 5, 64, 65, 130] {
            let mut set = IdleSet::new(slots);
            let mut model = vec![false; slots];
            let mut cursor = 0;
            let mut rng = fastrand::Rng::with_seed(slots as u64);
            for _ in 0..2_000 {
                let slot = rng.usize(..slots);
                if rng.bool() {
                    set.insert(slot);
                    model[slot] = true;
                } else {
                    let expected = walk(&model, cursor);
                    assert_eq!(set.take_next(), expected, "{slots} slots");
                    if let Some(taken) = expected {
                        model[taken] = false;
                        cursor = (taken + 1) % slots;
                    }
                }
            }
        }
    }

    #[test]
    fn a_grown_set_walks_over_its_new_slots_in_turn() {
        let mut set = all_idle(2);
        assert_eq!(set.take_next(), Some(0));
        set.grow(66);
        set.insert(65);
        set.insert(3);
        assert_eq!(set.take_next(), Some(1));
        assert_eq!(set.take_next(), Some(3));
        assert_eq!(set.take_next(), Some(65));
        set.insert(0);
        assert_eq!(set.take_next(), Some(0), "the cursor wraps over all 66");
    }

    #[test]
    fn removed_slots_are_not_taken() {
        let mut set = all_idle(3);
        assert!(set.remove(1));
        assert!(!set.remove(1));
        assert_eq!(set.take_next(), Some(0));
        assert_eq!(set.take_next(), Some(2));
        assert_eq!(set.take_next(), None);
    }
}
