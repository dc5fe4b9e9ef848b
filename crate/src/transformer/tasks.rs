//! Training tasks with known structure, seeded: each yields token sequences and, per position,
//! the token the model should predict next (or nothing where the answer cannot be known).
//!
//! - `copy`: `x_1 .. x_n | x_1 .. x_n`: after the bar the model copies (needs position).
//! - `reverse`: `x_1 .. x_n | x_n .. x_1`.
//! - `induction`: a random segment repeated to fill the context, `r r r ..` (its length varies): in the repeat the next token is the one that followed the current token last time, the job of an induction head
//!   (Olsson et al. 2022) built on a previous-token head.
//! - `brackets`: a string of `( ) [ ]`, then `=` and `Y` if it is balanced, `N` if not.
//! - `text`: next character of a passage from the chapter.

use crate::rng::Rng;

/// The passage for the character-level task: from the chapter's attention section.
pub const PASSAGE: &str = "attention lets every token look at every earlier token and decide \
how much of each to take. the query of a token is compared with the key of every other token; \
the scores are scaled by the square root of the head width and turned into weights by a \
softmax. the output is the weighted sum of the values. many heads do this side by side, each \
with its own projections, and their outputs are joined and projected back into the residual \
stream. a causal mask keeps a token from seeing the future, so the model can be trained to \
predict the next token at every position at once.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Copy,
    Reverse,
    Induction,
    Brackets,
    Text,
}

/// One training sequence: the tokens read, and per position the token expected next.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub tokens: Vec<usize>,
    pub targets: Vec<Option<usize>>,
}

/// Symbols of the copy and reverse tasks (the bar is one more).
const SYMBOLS: usize = 16;
/// Symbols of the induction task: 26 letters (dealt without repeats, see
/// [`repeated_segment`]).
const LETTERS: usize = 26;

impl Task {
    pub const NAMES: [&'static str; 5] = ["copy", "reverse", "induction", "brackets", "text"];

    pub fn name(self) -> &'static str {
        Task::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Task> {
        [
            Task::Copy,
            Task::Reverse,
            Task::Induction,
            Task::Brackets,
            Task::Text,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The characters that spell each token id, in order.
    pub fn alphabet(self) -> Vec<char> {
        match self {
            Task::Copy | Task::Reverse => {
                let mut a: Vec<char> = "abcdefghijklmnop".chars().collect();
                a.push('|');
                a
            }
            Task::Induction => "abcdefghijklmnopqrstuvwxyz".chars().collect(),
            Task::Brackets => "()[]=YN".chars().collect(),
            Task::Text => {
                let mut a: Vec<char> = PASSAGE.chars().collect();
                a.sort_unstable();
                a.dedup();
                a
            }
        }
    }

    pub fn vocab(self) -> usize {
        self.alphabet().len()
    }

    /// Token ids of a string in this task's alphabet; `Err` names the first unknown character.
    pub fn encode(self, text: &str) -> Result<Vec<usize>, String> {
        let alphabet = self.alphabet();
        text.chars()
            .map(|ch| {
                alphabet
                    .iter()
                    .position(|&a| a == ch)
                    .ok_or_else(|| format!("'{ch}' is not in the {} task's alphabet", self.name()))
            })
            .collect()
    }

    pub fn decode(self, tokens: &[usize]) -> String {
        let alphabet = self.alphabet();
        tokens.iter().map(|&t| alphabet[t]).collect()
    }

    /// A sequence of at most `ctx` tokens (the model reads all but the last one of the full
    /// string and predicts each next token).
    pub fn example(self, ctx: usize, rng: &mut Rng) -> Example {
        let full: Vec<usize>;
        let scored_from: usize; // first position of `full` whose token is scored
        let mut scored_only_last = false;
        match self {
            Task::Copy | Task::Reverse => {
                let n = ctx / 2; // n + 1 + n = ctx + 1 tokens, ctx of them read
                let xs: Vec<usize> = (0..n).map(|_| rng.below(SYMBOLS)).collect();
                let mut s = xs.clone();
                s.push(SYMBOLS); // the bar
                if self == Task::Reverse {
                    s.extend(xs.iter().rev());
                } else {
                    s.extend(&xs);
                }
                full = s;
                scored_from = n + 1;
            }
            Task::Induction => {
                let (s, second, _) = repeated_segment(ctx + 1, LETTERS, rng);
                full = s;
                // The first token of the second copy cannot be known; every later one can.
                scored_from = second + 1;
            }
            Task::Brackets => {
                let pairs = ctx.saturating_sub(2) / 2;
                let balanced = rng.uniform() < 0.5;
                let mut s = random_balanced(pairs.max(1), rng);
                if !balanced {
                    // Change one bracket into another: the string can no longer be balanced
                    // (the count of one kind or the nesting breaks).
                    let i = rng.below(s.len());
                    let old = s[i];
                    let mut new = rng.below(4);
                    if new == old {
                        new = (new + 1) % 4;
                    }
                    s[i] = new;
                }
                let label = if is_balanced(&s) { 5 } else { 6 };
                s.push(4);
                s.push(label);
                full = s;
                scored_from = full.len() - 1;
                scored_only_last = true;
            }
            Task::Text => {
                let text = Task::Text.encode(PASSAGE).expect("passage in its alphabet");
                let len = (ctx + 1).min(text.len());
                let start = rng.below(text.len() - len + 1);
                full = text[start..start + len].to_vec();
                scored_from = 1;
            }
        }
        let read = full.len() - 1;
        let tokens = full[..read].to_vec();
        let targets = (0..read)
            .map(|t| {
                let next = t + 1;
                (next >= scored_from && (!scored_only_last || next == full.len() - 1))
                    .then_some(full[next])
            })
            .collect();
        Example { tokens, targets }
    }
}

/// The induction task's sequence of `len` tokens over `vocab` (also the probe of
/// [`super::train::head_scores`]): `x .. x r y .. y r`, a segment r of random length n
/// (uniform in [max(3, len / 4), max(3, len / 4, (len + 1) / 3)]) copied to the end, the copies
/// m apart with m uniform in [n, len - n] (random filler before and between them). Filler and
/// r are dealt from a shuffled deck of the vocabulary, so each token occurs at most once
/// before the second copy (when len - n <= vocab) and the token after the current token's
/// previous occurrence is unambiguous, as with the large vocabularies of Olsson et al. 2022.
/// Because m varies, no head at a fixed positional offset finds the answer (with `r r` of a
/// fixed length, or r repeated to fill the context, such heads do); n >= 3 keeps the token
/// after the previous occurrence from being the previous token.
/// Returns the tokens, the index len - n of the second copy's first token, and m.
pub fn repeated_segment(len: usize, vocab: usize, rng: &mut Rng) -> (Vec<usize>, usize, usize) {
    let lo = (len / 4).max(3);
    let hi = ((len + 1) / 3).max(lo);
    let n = lo + rng.below(hi - lo + 1);
    let second = len.saturating_sub(n).max(n);
    let first = rng.below(second - n + 1);
    let mut deck: Vec<usize> = Vec::new();
    let mut s: Vec<usize> = (0..second)
        .map(|_| {
            if deck.is_empty() {
                deck = (0..vocab).collect();
            }
            deck.swap_remove(rng.below(deck.len()))
        })
        .collect();
    s.extend_from_within(first..first + n);
    s.truncate(len);
    (s, second, second - first)
}

/// A uniformly shaped random balanced string of `pairs` pairs over `(` `)` `[` `]`
/// (ids 0, 1, 2, 3): open while allowed, close at random, kinds at random.
fn random_balanced(pairs: usize, rng: &mut Rng) -> Vec<usize> {
    let mut out = Vec::with_capacity(2 * pairs);
    let mut stack = Vec::new();
    let mut opened = 0;
    while out.len() < 2 * pairs {
        let can_open = opened < pairs;
        let open = can_open && (stack.is_empty() || rng.uniform() < 0.5);
        if open {
            let kind = rng.below(2);
            out.push(2 * kind);
            stack.push(kind);
            opened += 1;
        } else {
            let kind = stack.pop().expect("something open");
            out.push(2 * kind + 1);
        }
    }
    out
}

/// Whether a string of bracket ids is balanced.
pub fn is_balanced(s: &[usize]) -> bool {
    let mut stack = Vec::new();
    for &c in s {
        match c {
            0 | 2 => stack.push(c),
            1 | 3 => {
                if stack.pop() != Some(c - 1) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    stack.is_empty()
}
