//! The "engine-io" profile: a raw Engine.IO server at `/engine.io/` (ping interval 300 ms, ping
//! timeout 200 ms, max payload 1,000,000 bytes, CORS for any origin) that echoes every message,
//! text or binary, to its sender: [`engine_io`] on the async runtimes
//! (`sockio_server::engine`), [`engine_io_threads`] on threads (`sockio_threads::engine`).

use sockio_core::engineio::EngineConfig;
use sockio_core::http::CorsConfig;
use sockio_server::Runtime;
use sockio_server::engine::EngineServer;

use crate::ProfileOptions;

/// The profile's options, the same on every runtime.
fn config(options: &ProfileOptions) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.ping_interval = options.ping_interval;
    config.ping_timeout = options.ping_timeout;
    config.max_http_buffer_size = 1_000_000;
    config.cors = CorsConfig {
        allowed_origins: options.allowed_origins(),
        ..CorsConfig::default()
    };
    config.path = "/engine.io/".to_owned();
    config
}

/// Builds the engine-io profile's server on an async runtime.
pub fn engine_io<Rt: Runtime>(options: &ProfileOptions) -> EngineServer<Rt> {
    let engine = EngineServer::<Rt>::new(config(options));
    engine.on_message(|socket, data| {
        // A client gone meanwhile is not an error of the echo.
        let _ = socket.send(data);
    });
    engine
}

/// Builds the engine-io profile's server on the threads runtime.
pub fn engine_io_threads(options: &ProfileOptions) -> sockio_threads::engine::EngineServer {
    let engine = sockio_threads::engine::EngineServer::new(config(options));
    engine.on_message(|socket, data| {
        // A client gone meanwhile is not an error of the echo.
        let _ = socket.send(data);
    });
    engine
}
