//! Fermat's factorisation, bounded: an RSA modulus `n = p*q` with `|p - q|` small is
//! `a^2 - b^2` for `a = (p + q) / 2` just above `√n`, so walking `a` up from `⌈√n⌉` finds
//! `a^2 - n` a perfect square within a few steps. goodkey takes 100 steps; here a step costs
//! a few word operations, so [`ROUNDS`] takes many more (primes up to about `2^9.5 * n^(1/4)`
//! apart are found, against `2^4.8 * n^(1/4)` for 100 steps: the gap grows as √steps).
//!
//! Each step only updates `a^2 - n` modulo a few small numbers and asks whether it can be a
//! square modulo each (a table per modulus); only a value that passes all of them (about
//! 1 in 45 000) is checked exactly with a big-number square root (num-bigint).

use std::sync::OnceLock;

use num_bigint::BigUint;

/// Steps of the walk from `⌈√n⌉`.
pub(super) const ROUNDS: u32 = 1 << 16;

/// Moduli of the square filter and, for each, which residues are squares.
const FILTER_MODULI: [u32; 13] = [64, 63, 65, 11, 17, 19, 23, 29, 31, 37, 41, 43, 47];

fn square_tables() -> &'static [Vec<bool>] {
    static TABLES: OnceLock<Vec<Vec<bool>>> = OnceLock::new();
    TABLES.get_or_init(|| {
        FILTER_MODULI
            .iter()
            .map(|&m| {
                let mut square = vec![false; m as usize];
                for x in 0..m {
                    square[(x * x % m) as usize] = true;
                }
                square
            })
            .collect()
    })
}

/// Whether Fermat's method factors the big-endian `n` within `rounds` steps.
pub(super) fn factors(n: &[u8], rounds: u32) -> bool {
    let n = BigUint::from_bytes_be(n);
    let root = n.sqrt();
    if &root * &root == n {
        return true;
    }
    let start = root + 1u32;
    let rest = &start * &start - &n;
    let tables = square_tables();
    // a mod m and (a^2 - n) mod m, for each filter modulus m.
    let mut a: Vec<u32> = FILTER_MODULI.iter().map(|&m| residue(&start, m)).collect();
    let mut b2: Vec<u32> = FILTER_MODULI.iter().map(|&m| residue(&rest, m)).collect();
    for step in 0..rounds {
        if b2.iter().zip(tables).all(|(r, square)| square[*r as usize]) {
            let a = &start + step;
            let candidate = &a * &a - &n;
            let b = candidate.sqrt();
            if &b * &b == candidate {
                return true;
            }
        }
        // (a + 1)^2 - n = (a^2 - n) + 2a + 1.
        for ((r, a), &m) in b2.iter_mut().zip(a.iter_mut()).zip(&FILTER_MODULI) {
            *r = (*r + 2 * *a + 1) % m;
            *a = (*a + 1) % m;
        }
    }
    false
}

fn residue(value: &BigUint, m: u32) -> u32 {
    (value % m).iter_u32_digits().next().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_primes_and_misses_distant_ones() {
        // 1000003 * 1000033: a = 1000018 is ⌈√n⌉, found in the first step.
        let close = (1_000_003u64 * 1_000_033).to_be_bytes();
        assert!(factors(&close, 1));
        // 1000003 * 1035077: (p + q) / 2 is 151 steps above ⌈√n⌉.
        let later = (1_000_003u64 * 1_035_077).to_be_bytes();
        assert!(!factors(&later, 151));
        assert!(factors(&later, 152));
        // A square (p = q).
        assert!(factors(&(1_000_003u64 * 1_000_003).to_be_bytes(), 1));
        // 1009 * 1000003: (p + q) / 2 is 468 741 steps above ⌈√n⌉.
        let far = (1_009u64 * 1_000_003).to_be_bytes();
        assert!(!factors(&far, 468_741));
        assert!(factors(&far, 468_742));
    }
}
