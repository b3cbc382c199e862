//! Fuzz targets on the stable toolchain: each mutates real seed files (byte flips, inserted
//! tokens, repeats, deep nesting, encodings) with proptest and checks what must hold for any
//! input: no panic, no stack overflow, refusals that name a line and carry no raw control
//! characters, and, for events, that whatever is accepted can be journaled and read back and
//! that its reply fits the budget.
//!
//! CI runs a short seeded campaign (`FUZZ_CASES`, default 300 per target). A long one:
//! `FUZZ_CASES=20000 FUZZ_SEED=7 cargo test --release --test fuzz -- --nocapture --test-threads 1`
//! (figures in the README). A failure prints the shrunk input; it becomes a regression test
//! in the parser's own unit tests.

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

mod targets;

/// Ways to damage an input.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replaces one byte.
    Flip { at: usize, byte: u8 },
    /// Inserts a token from the target's dictionary.
    Token { at: usize, token: usize },
    /// Inserts arbitrary bytes.
    Insert { at: usize, bytes: Vec<u8> },
    /// Deletes a range.
    Delete { at: usize, len: usize },
    /// Repeats a slice many times.
    Repeat { at: usize, len: usize, times: usize },
    /// Opens (and maybe closes) brackets or indentation very deep.
    Nest {
        at: usize,
        open: usize,
        depth: usize,
        close: bool,
    },
}

/// Openers for deep nesting, with their closers.
const NESTERS: &[(&str, &str)] = &[
    ("[", "]"),
    ("{", "}"),
    ("(", ")"),
    ("{\"a\":", "}"),
    ("{a: ", "}"),
    ("- ", ""),
    ("\n ", ""),
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(at, token)| Mutation::Token { at, token }),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..64, 2usize..2000)
            .prop_map(|(at, len, times)| Mutation::Repeat { at, len, times }),
        1 => (any::<usize>(), any::<usize>(), 1usize..100_000, any::<bool>())
            .prop_map(|(at, open, depth, close)| Mutation::Nest { at, open, depth, close }),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation, dictionary: &[&str]) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match m {
        Mutation::Flip { at, byte } => {
            if !input.is_empty() {
                let i = at % input.len();
                input[i] = *byte;
            }
        }
        Mutation::Token { at, token } => {
            let i = pos(*at, input.len());
            let t = dictionary[token % dictionary.len()].as_bytes();
            input.splice(i..i, t.iter().copied());
        }
        Mutation::Insert { at, bytes } => {
            let i = pos(*at, input.len());
            input.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = pos(*at, input.len());
            let end = (i + len).min(input.len());
            input.drain(i..end);
        }
        Mutation::Repeat { at, len, times } => {
            let i = pos(*at, input.len());
            let end = (i + len).min(input.len());
            let slice = input[i..end].to_vec();
            let rep: Vec<u8> = slice.repeat(*times);
            input.splice(end..end, rep);
        }
        Mutation::Nest {
            at,
            open,
            depth,
            close,
        } => {
            let i = pos(*at, input.len());
            let (o, c) = NESTERS[open % NESTERS.len()];
            let mut ins = o.repeat(*depth).into_bytes();
            if *close {
                ins.extend(c.repeat(*depth).into_bytes());
            }
            input.splice(i..i, ins);
        }
    }
}

/// A seed and the mutations applied to it.
fn mutated(
    seeds: &'static [&'static [u8]],
    dictionary: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    (0..seeds.len(), proptest::collection::vec(mutation(), 0..6)).prop_map(move |(seed, muts)| {
        let mut input = seeds[seed].to_vec();
        for m in &muts {
            apply(&mut input, m, dictionary);
        }
        input
    })
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300)
}

/// Runs one target over mutated seeds with a fixed seed (`FUZZ_SEED` to vary it).
fn fuzz(
    name: &str,
    seeds: &'static [&'static [u8]],
    dictionary: &'static [&'static str],
    check: impl Fn(&[u8]) -> Result<(), String>,
) {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let begun = Instant::now();
    let result = runner.run(&mutated(seeds, dictionary), |input| {
        check(&input).map_err(TestCaseError::fail)
    });
    let took = begun.elapsed();
    eprintln!(
        "fuzz {name}: {} cases in {:.2?} ({:.0} cases/s)",
        cases(),
        took,
        f64::from(cases()) / took.as_secs_f64()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!(
            "fuzz {name} failed: {why}\ninput ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(&input[..input.len().min(2000)])
        ),
        Err(e) => panic!("fuzz {name}: {e}"),
    }
}

#[test]
fn event_decoder() {
    fuzz(
        "event_decoder",
        targets::event::SEEDS,
        targets::event::DICTIONARY,
        targets::event::check,
    );
}

#[test]
fn slo_parser() {
    fuzz(
        "slo_parser",
        targets::slo::SEEDS,
        targets::slo::DICTIONARY,
        targets::slo::check,
    );
}

#[test]
fn criteria_parser() {
    fuzz(
        "criteria_parser",
        targets::criteria::SEEDS,
        targets::criteria::DICTIONARY,
        targets::criteria::check,
    );
}

#[test]
fn locustfile_translator() {
    fuzz(
        "locustfile_translator",
        targets::locust::SEEDS,
        targets::locust::DICTIONARY,
        targets::locust::check,
    );
}

#[test]
fn shipyard_parser() {
    fuzz(
        "shipyard_parser",
        targets::shipyard::SEEDS,
        targets::shipyard::DICTIONARY,
        targets::shipyard::check,
    );
}
