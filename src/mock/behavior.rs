//! Executing a backend's behaviour: admission through the max-concurrency queue,
//! sampling the timing model per request, picking the scripted fault, and pacing a
//! streamed reply from absolute deadlines (`first token + sum of gaps`), never from
//! accumulated sleeps.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::rng::Rng;
use crate::scenario::behavior::{Dist, FaultAction, FaultRule, Timing, TokenCount};

/// Longest reply a mock produces, whatever `max_tokens` says.
const MAX_TOKENS: u64 = 8192;

/// A backend's live behaviour.
#[derive(Debug)]
pub struct Behavior {
    timing: Timing,
    faults: Vec<FaultRule>,
    counter: AtomicU64,
    queue: Option<Arc<Semaphore>>,
    active: Arc<AtomicUsize>,
}

/// What a model call asks of the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    /// `max_tokens` (or Bedrock's `maxTokens`).
    pub max_tokens: Option<u64>,
    /// vLLM's `min_tokens`.
    pub min_tokens: Option<u64>,
    /// vLLM's `ignore_eos`: generate `max_tokens` whatever the model would say.
    pub ignore_eos: bool,
    /// Prompt tokens received, as the backend counts them.
    pub prompt_tokens: u64,
}

/// One admitted request: its fault, its timing, and its place in the queue.
#[derive(Debug)]
pub struct Admission {
    /// Index among this backend's model calls.
    pub index: u64,
    /// The scripted fault that applies, if any.
    pub fault: Option<FaultAction>,
    /// When the first token is due.
    pub first_at: Instant,
    /// Offsets of tokens 1.. from the first token.
    pub offsets: Vec<Duration>,
    _permit: Option<OwnedSemaphorePermit>,
    _active: ActiveGuard,
}

#[derive(Debug)]
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Behavior {
    /// Behaviour from the scenario's data.
    pub fn new(timing: Timing, faults: Vec<FaultRule>) -> Self {
        let queue = timing.max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
        Behavior {
            timing,
            faults,
            counter: AtomicU64::new(0),
            queue,
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests being served right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// How this backend counts tokens.
    pub fn counter(&self) -> &crate::tokens::Counter {
        &self.timing.counter
    }

    /// [`Behavior::admit_ask`] for a prompt of `prompt_bytes` bytes (about 4 per
    /// token), without `min_tokens` or `ignore_eos`.
    pub async fn admit(
        &self,
        model: &str,
        max_tokens: Option<u64>,
        prompt_bytes: usize,
        arrival: std::time::Instant,
    ) -> Admission {
        let ask = Ask {
            max_tokens,
            prompt_tokens: (prompt_bytes as u64).div_ceil(4),
            ..Ask::default()
        };
        self.admit_ask(model, ask, arrival).await
    }

    /// Admits a model call that arrived at `arrival`: waits for a queue slot, samples
    /// timing, picks a fault. Time to first token counts from the arrival, or from the
    /// moment a queue slot freed up when the request had to wait for one, plus the
    /// prefill of the prompt's tokens. The reply's length is the timing model's,
    /// within what the request asks: at most `max_tokens`, at least `min_tokens`, and
    /// exactly `max_tokens` with `ignore_eos` (vLLM's sampling parameters).
    pub async fn admit_ask(&self, model: &str, ask: Ask, arrival: std::time::Instant) -> Admission {
        let Ask {
            max_tokens,
            min_tokens,
            ignore_eos,
            prompt_tokens,
        } = ask;
        let index = self.counter.fetch_add(1, Ordering::Relaxed);
        let fault = self
            .faults
            .iter()
            .find(|r| r.matches(index, model))
            .map(|r| r.action.clone());
        let mut start = Instant::from_std(arrival);
        let permit = match &self.queue {
            Some(q) => match Arc::clone(q).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let p = Arc::clone(q).acquire_owned().await.ok();
                    start = Instant::now();
                    p
                }
            },
            None => None,
        };
        let running = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = ActiveGuard(Arc::clone(&self.active));
        let t = &self.timing;
        let mut rng = Rng::for_request(t.seed, index);
        let n = match (t.tokens, max_tokens) {
            (TokenCount::Fixed(n), _) => u64::from(n),
            (_, Some(m)) if ignore_eos => m,
            (TokenCount::FromMaxTokens { default }, m) => m.unwrap_or(u64::from(default)),
            (TokenCount::UpTo(n), m) => {
                let natural = m.map_or(u64::from(n), |m| m.min(u64::from(n)));
                natural.max(min_tokens.unwrap_or(0).min(m.unwrap_or(u64::MAX)))
            }
        }
        .clamp(1, MAX_TOKENS) as usize;
        let prefill = t.prefill_per_token.mul_f64(prompt_tokens as f64);
        let first_at = start + sample(&t.ttft, &mut rng) + prefill;
        let stretch = 1.0 + t.slowdown * (running.saturating_sub(1)) as f64;
        let mut offsets = Vec::with_capacity(n.saturating_sub(1));
        let mut at = Duration::ZERO;
        for _ in 1..n {
            at += sample(&t.itl, &mut rng).mul_f64(stretch);
            offsets.push(at);
        }
        Admission {
            index,
            fault,
            first_at,
            offsets,
            _permit: permit,
            _active: guard,
        }
    }
}

impl Admission {
    /// Tokens in the reply.
    pub fn tokens(&self) -> usize {
        self.offsets.len() + 1
    }

    /// When the last token is due (what a non-streaming reply waits for).
    pub fn last_at(&self) -> Instant {
        self.first_at + self.offsets.last().copied().unwrap_or_default()
    }

    /// When a stream's first token actually goes out: its due time, pushed back by a
    /// slow first byte or by a stall placed before it. (The journal's first-token time,
    /// from which gateway overhead is computed, must not count the mock's own delay.)
    pub fn first_token_out(&self) -> Instant {
        match self.fault {
            Some(FaultAction::SlowFirstByte(d)) => self.first_at + d,
            Some(FaultAction::Stall {
                after_tokens: 0,
                duration,
            }) => self.first_at + duration,
            _ => self.first_at,
        }
    }

    /// Waits until the first token is due: when a backend that fails a request
    /// answers (an error or an empty reply ends it there, not after a generation).
    pub async fn wait_first(&self) {
        pace_until(self.first_at).await;
    }

    /// When a whole (non-streaming) reply goes out: its last token's due time, pushed
    /// back by a slow first byte or a stall.
    pub fn whole_out(&self) -> Instant {
        let extra = match self.fault {
            Some(FaultAction::SlowFirstByte(d)) => d,
            Some(FaultAction::Stall { duration, .. }) => duration,
            _ => Duration::ZERO,
        };
        self.last_at() + extra
    }

    /// Waits as a non-streaming reply would: slow first byte, stall, then the last token.
    pub async fn wait_full(&self) {
        pace_until(self.whole_out()).await;
    }
}

/// Sleeps until `t`, without a trip through the timer when `t` has passed (instant
/// replies are the conformance default and must not cost a timer tick per token).
///
/// tokio's timer fires on the first millisecond tick at or after a deadline, so a
/// sleep ends on average half a tick late. Aiming half a tick early centres the
/// wake-ups on the deadline (jitter ±0.5 ms) instead of biasing every first token
/// late; `benches/mock_timing.rs` measures the result.
async fn pace_until(t: Instant) {
    const HALF_TICK: Duration = Duration::from_micros(500);
    let now = Instant::now();
    if t > now + HALF_TICK {
        tokio::time::sleep_until(t - HALF_TICK).await;
    }
}

/// Draws one duration.
pub fn sample(d: &Dist, rng: &mut Rng) -> Duration {
    let secs = match *d {
        Dist::Fixed(v) => return v,
        Dist::Uniform { min, max } => min.as_secs_f64() + (max - min).as_secs_f64() * rng.unit(),
        Dist::Normal { mean, stddev } => mean.as_secs_f64() + stddev.as_secs_f64() * rng.normal(),
        Dist::LogNormal { median, sigma } => median.as_secs_f64() * (sigma * rng.normal()).exp(),
    };
    Duration::try_from_secs_f64(secs.clamp(0.0, 3600.0)).unwrap_or_default()
}

/// The reply text of a mock, split into `n` tokens (words, repeated as needed).
pub fn reply_tokens(backend: &str, model: &str, n: usize) -> Vec<String> {
    reply_words(backend, model, n, |words| words.map(str::to_owned).collect())
}

/// The whole reply of [`reply_tokens`] as one string (the non-streaming path): whole
/// copies of the text, then its first words, without splitting it word by word.
pub fn reply_text(backend: &str, model: &str, n: usize) -> String {
    let text = reply_base(backend, model);
    // Every word ends in a space, the text's last included.
    let words = text.bytes().filter(|&b| b == b' ').count().max(1);
    let (copies, rest) = (n / words, n % words);
    let cut = match rest {
        0 => 0,
        k => text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b' ')
            .nth(k - 1)
            .map_or(text.len(), |(i, _)| i + 1),
    };
    let mut out = String::with_capacity(copies * text.len() + cut);
    for _ in 0..copies {
        out.push_str(&text);
    }
    out.push_str(&text[..cut]);
    out
}

/// The tokens a mock puts before its reply to a ReAct agent (GitLab's Duo Chat agent,
/// whose prompt asks the model to end with `Final Answer: <answer>`): with them, the
/// agent streams the reply as its final answer, as it would a real model's.
pub const REACT_PREFIX: [&str; 2] = ["I can answer directly.\n", "Final Answer: "];

/// Whether a request's prompt asks for a ReAct `Final Answer:`.
pub fn asks_for_final_answer(body: &[u8]) -> bool {
    const MARK: &[u8] = b"Final Answer:";
    body.windows(MARK.len()).any(|w| w == MARK)
}

/// `tokens` as the answer to a prompt: after [`REACT_PREFIX`] when it asks for one.
pub fn answer_tokens(body: &[u8], tokens: Vec<String>) -> Vec<String> {
    if asks_for_final_answer(body) {
        final_answer(tokens)
    } else {
        tokens
    }
}

/// `tokens` after [`REACT_PREFIX`], which joins the first token: the count of tokens
/// (and so their timing) stays the one the timing model drew.
pub fn final_answer(mut tokens: Vec<String>) -> Vec<String> {
    match tokens.first_mut() {
        Some(first) => first.insert_str(0, &REACT_PREFIX.concat()),
        None => tokens.push(REACT_PREFIX.concat()),
    }
    tokens
}

/// The first half of a reply's bytes, for faults that break a body in the middle. By
/// bytes, not characters: a reply holds the model name, which may be multi-byte, and
/// the half of a string's length can fall inside a character.
pub fn first_half(body: &str) -> Bytes {
    Bytes::copy_from_slice(&body.as_bytes()[..body.len() / 2])
}

/// A JSON reply that sends `half` of its body and then breaks the connection (the
/// `cut` fault of a non-streaming reply).
pub fn cut_reply(half: Bytes) -> axum::response::Response {
    let parts = futures_util::stream::unfold(Some(half), |state| async move {
        match state {
            Some(b) => Some((Ok(b), None)),
            None => {
                // Let the half body reach the peer before the connection breaks.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Err(std::io::Error::other("scripted cut")), None))
            }
        }
    });
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from_stream(futures_util::StreamExt::take(parts, 2)))
        .unwrap_or_default()
}

/// The text a mock's replies repeat.
fn reply_base(backend: &str, model: &str) -> String {
    format!("Mock reply from {backend} serving {model}: def add(a, b): return a + b ")
}

/// Hands the `n` words of a reply to `f`.
fn reply_words<T>(backend: &str, model: &str, n: usize, f: impl FnOnce(&mut dyn Iterator<Item = &str>) -> T) -> T {
    let text = reply_base(backend, model);
    f(&mut text.split_inclusive(' ').cycle().take(n))
}

/// A provider's stream framing.
pub trait Codec: Send + 'static {
    /// Frames before the first token (role chunk, filter results, `messageStart`).
    fn head(&mut self) -> Vec<Bytes>;
    /// One token; `last` when it is the final one.
    fn token(&mut self, text: &str, last: bool) -> Bytes;
    /// Frames after the last token (usage, `[DONE]`, `messageStop`).
    fn tail(&mut self, completion_tokens: usize) -> Vec<Bytes>;
    /// A frame whose JSON payload is broken.
    fn malformed_json(&mut self) -> Bytes;
    /// A frame whose framing is broken.
    fn malformed_frame(&mut self) -> Bytes;
    /// `frame` with its integrity check broken (event-stream CRC); others break framing.
    fn corrupt(&mut self, _frame: Bytes) -> Bytes {
        self.malformed_frame()
    }
}

struct Paced<C> {
    adm: Admission,
    tokens: Vec<String>,
    codec: C,
    next: usize,
    started: bool,
    done: bool,
    shift: Duration,
    pending: VecDeque<Bytes>,
}

/// A streamed reply body paced by the admission's deadlines, with its stream fault.
pub fn paced_body<C: Codec>(adm: Admission, tokens: Vec<String>, codec: C) -> Body {
    let st = Paced {
        adm,
        tokens,
        codec,
        next: 0,
        started: false,
        done: false,
        shift: Duration::ZERO,
        pending: VecDeque::new(),
    };
    Body::from_stream(futures_util::stream::unfold(st, |mut st| async move {
        let item = st.step().await?;
        Some((item, st))
    }))
}

impl<C: Codec> Paced<C> {
    async fn step(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            if !self.started {
                self.started = true;
                if let Some(FaultAction::SlowFirstByte(d)) = self.adm.fault {
                    self.shift += d;
                }
                pace_until(self.adm.first_at + self.shift).await;
                self.pending.extend(self.codec.head());
            }
            if self.next >= self.tokens.len() {
                let n = self.tokens.len();
                self.pending.extend(self.codec.tail(n));
                self.done = true;
                continue;
            }
            let k = self.next;
            match self.adm.fault {
                Some(FaultAction::Stall { after_tokens, duration }) if k == after_tokens as usize => {
                    self.shift += duration;
                }
                Some(FaultAction::Cut { after_tokens }) if k == after_tokens as usize => {
                    // An error ends the body without its terminating chunk: the peer sees
                    // the connection close mid-stream. Give the server a moment to flush
                    // what was sent so far, or an instant reply dies before its headers.
                    self.done = true;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Some(Err(std::io::Error::other("scripted cut")));
                }
                _ => {}
            }
            let due = self.adm.first_at
                + self.shift
                + if k == 0 {
                    Duration::ZERO
                } else {
                    self.adm.offsets[k - 1]
                };
            pace_until(due).await;
            let last = k + 1 == self.tokens.len();
            let frame = self.codec.token(&self.tokens[k], last);
            let broken_at = self.tokens.len() / 2;
            let frame = match self.adm.fault {
                Some(FaultAction::MalformedJson) if k == broken_at => self.codec.malformed_json(),
                Some(FaultAction::MalformedSse) if k == broken_at => self.codec.malformed_frame(),
                Some(FaultAction::CorruptCrc) if k == broken_at => self.codec.corrupt(frame),
                _ => frame,
            };
            self.pending.push_back(frame);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::behavior::Match;

    #[tokio::test]
    async fn the_first_token_and_whole_reply_times_include_the_scripted_delays() {
        let timing = Timing {
            ttft: Dist::Fixed(Duration::from_millis(10)),
            itl: Dist::Fixed(Duration::from_millis(5)),
            tokens: TokenCount::Fixed(3),
            ..Timing::default()
        };
        let rules = |action| {
            vec![FaultRule {
                when: Match::All,
                action,
                seed: 0,
            }]
        };
        let slow = Behavior::new(
            timing.clone(),
            rules(FaultAction::SlowFirstByte(Duration::from_secs(1))),
        );
        let a = slow.admit("m", None, 0, std::time::Instant::now()).await;
        assert_eq!(a.first_token_out() - a.first_at, Duration::from_secs(1));
        assert_eq!(a.whole_out() - a.last_at(), Duration::from_secs(1));
        let stall = |after_tokens| {
            Behavior::new(
                timing.clone(),
                rules(FaultAction::Stall {
                    after_tokens,
                    duration: Duration::from_secs(2),
                }),
            )
        };
        let a = stall(0).admit("m", None, 0, std::time::Instant::now()).await;
        assert_eq!(a.first_token_out() - a.first_at, Duration::from_secs(2));
        let a = stall(2).admit("m", None, 0, std::time::Instant::now()).await;
        assert_eq!(a.first_token_out(), a.first_at, "a stall after the first token");
        assert_eq!(a.whole_out() - a.last_at(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn queue_and_sampling() {
        let timing = Timing {
            ttft: Dist::Fixed(Duration::from_millis(5)),
            itl: Dist::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3),
            },
            tokens: TokenCount::FromMaxTokens { default: 4 },
            max_concurrency: Some(1),
            seed: 9,
            ..Timing::default()
        };
        let b = Behavior::new(
            timing,
            vec![FaultRule {
                when: Match::Every(2),
                action: FaultAction::Empty200,
                seed: 0,
            }],
        );
        let a = b.admit("m", Some(10), 0, std::time::Instant::now()).await;
        assert_eq!(a.tokens(), 10);
        assert!(a.offsets.windows(2).all(|w| w[0] < w[1]));
        assert!(
            a.offsets
                .iter()
                .zip(1u32..)
                .all(|(o, k)| *o >= Duration::from_millis(k.into()) && *o <= Duration::from_millis(3 * u64::from(k)))
        );
        assert_eq!(a.fault, None);
        assert_eq!(b.active(), 1);
        // The queue holds the second request until the first is dropped.
        let second = b.admit("m", None, 0, std::time::Instant::now());
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut second)
                .await
                .is_err()
        );
        drop(a);
        let s = second.await;
        assert_eq!(s.fault, Some(FaultAction::Empty200));
        assert_eq!(s.tokens(), 4);
    }

    #[test]
    fn a_react_prompt_gets_a_final_answer() {
        let plain = answer_tokens(b"{\"messages\": []}", vec!["a ".into()]);
        assert_eq!(plain, ["a "]);
        let react = answer_tokens(b"... in the \"Final Answer:\" section ...", vec!["a ".into()]);
        assert_eq!(react.concat(), "I can answer directly.\nFinal Answer: a ");
    }

    #[test]
    fn reply_tokens_repeat_words() {
        let t = reply_tokens("b", "m", 40);
        assert_eq!(t.len(), 40);
        assert!(t.iter().all(|w| !w.is_empty()));
        assert_eq!((t[0].as_str(), t[13].as_str()), ("Mock ", "Mock "), "13 words, cycling");
        assert_eq!(reply_text("b", "m", 40), t.concat());
        // The middle of "a€" (4 bytes) is inside the euro sign.
        assert_eq!(&first_half("a€")[..], b"a\xe2");
        for (backend, model) in [("b", "m"), ("vllm  a", "Mixtral 8x7B é")] {
            for n in 0..60 {
                assert_eq!(
                    reply_text(backend, model, n),
                    reply_tokens(backend, model, n).concat(),
                    "{n}"
                );
            }
        }
    }
}
