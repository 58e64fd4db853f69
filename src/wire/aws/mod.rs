//! AWS wire primitives for the Bedrock runtime: the event-stream framing its streaming
//! operations answer with ([`eventstream`]) and the SigV4 request signing it requires
//! ([`sigv4`]). Both are pure (no I/O), so the Bedrock mock, the reference gateway and the
//! conformance checks can share them and test them in isolation.

pub mod eventstream;
pub mod sigv4;
