//! The "engine-io" profile: a raw Engine.IO server at `/engine.io/` (ping interval 300 ms, ping
//! timeout 200 ms, max payload 1,000,000 bytes, CORS for any origin) that echoes every message,
//! text or binary, to its sender. Async runtimes only (see [`crate::serve::check_supported`]).

use sockio_core::engineio::EngineConfig;
use sockio_core::http::CorsConfig;
use sockio_server::Runtime;
use sockio_server::engine::EngineServer;

use crate::ProfileOptions;

/// Builds the engine-io profile's server.
pub fn engine_io<Rt: Runtime>(options: &ProfileOptions) -> EngineServer<Rt> {
    let mut config = EngineConfig::default();
    config.ping_interval = options.ping_interval;
    config.ping_timeout = options.ping_timeout;
    config.max_http_buffer_size = 1_000_000;
    config.cors = CorsConfig {
        allowed_origins: options.allowed_origins(),
        ..CorsConfig::default()
    };
    config.path = "/engine.io/".to_owned();
    let engine = EngineServer::<Rt>::new(config);
    engine.on_message(|socket, data| {
        // A client gone meanwhile is not an error of the echo.
        let _ = socket.send(data);
    });
    engine
}
