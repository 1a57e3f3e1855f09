//! The local server's tests, one binary with a module per subject: the
//! HTTP API, the WebSocket side, the event fixtures, and the functions run
//! as Lambda binaries against moto.

mod fixtures;
mod functions;
mod http;
mod support;
mod websocket;
