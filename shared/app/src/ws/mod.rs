//! The WebSocket API: frames from clients, messages to them, and the pushes
//! of request status and results. Written once for the WebSocket Lambda and
//! the local server, which turns its sockets into the same API Gateway
//! events; people-http translates those into [`WsEvent`]s.
//!
//! ## Why no result is missed
//!
//! A subscriber first *writes* its subscription, then *reads* the request.
//! A worker first *finishes* the request, then *reads* the subscribers.
//! Both stores read what was written before (DynamoDB: consistent reads on
//! the base tables), so whichever order the two interleave in, either the
//! subscriber reads the finished request and pushes the result to itself,
//! or the worker reads the subscription and pushes it. Both may happen: a
//! client can receive a `process-result` twice and keeps the first.
//! And if a worker dies between finishing and pushing, its message is
//! delivered again, and a finished request is pushed again.

mod frames;
mod handler;
mod push;

pub use frames::{ClientFrame, FrameError, Progress, ServerMessage, parse_frame};
pub use handler::{WsApi, WsEvent, WsStatus, handle};
pub use push::{Delivery, PushReport, Pusher};

/// The largest message API Gateway carries to or from a WebSocket client
/// (its "message payload size" quota).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Requests one connection may follow at once (`subscribe` and `process`
/// past it get a `too_many_subscriptions` error frame).
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 100;

/// Connections that may follow one request (`subscribe` past it gets a
/// `too_many_followers` error frame).
pub const MAX_FOLLOWERS_PER_REQUEST: usize = 100;

/// How long the pushes of one message to all followers of a request may
/// take; what is not delivered by then is logged as failed (the request
/// store keeps the result for `GET /requests/{id}`).
pub const FANOUT_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest `client_ref` a client may attach to a `process` frame.
pub const MAX_CLIENT_REF_CHARS: usize = 256;

#[cfg(test)]
mod tests;
