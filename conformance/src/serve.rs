//! Runs one profile on one runtime until the process is killed.

use std::net::TcpListener;

use crate::{Profile, ProfileOptions, RuntimeKind, engine_profile, profile, profile_threads};

/// Why a server could not be started or stopped serving.
#[derive(Debug)]
pub struct ServeError(pub String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// Serves `profile` on `runtime` from `listener` until the process ends.
pub fn serve(
    runtime: RuntimeKind,
    profile: Profile,
    listener: TcpListener,
    options: &ProfileOptions,
) -> Result<(), ServeError> {
    let failed = |e: &dyn std::fmt::Display| ServeError(format!("the server stopped: {e}"));
    match runtime {
        RuntimeKind::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| ServeError(format!("cannot start tokio: {e}")))?;
            rt.block_on(serve_async::<sockio_tokio::Tokio>(
                profile, listener, options,
            ))
        }
        RuntimeKind::Smol => {
            smol::block_on(serve_async::<sockio_smol::Smol>(profile, listener, options))
        }
        RuntimeKind::Threads => match profile {
            Profile::SocketIo => profile_threads::socket_io(options)
                .serve_std(listener)
                .map_err(|e| failed(&e)),
            Profile::Bench => profile_threads::bench(options)
                .serve_std(listener)
                .map_err(|e| failed(&e)),
            Profile::EngineIo => engine_profile::engine_io_threads(options)
                .serve_std(listener)
                .map_err(|e| failed(&e)),
        },
    }
}

/// Serves `profile` on an async runtime (the same code for tokio and smol).
async fn serve_async<Rt: sockio_server::Runtime>(
    profile: Profile,
    listener: TcpListener,
    options: &ProfileOptions,
) -> Result<(), ServeError> {
    let result = match profile {
        Profile::SocketIo => profile::socket_io::<Rt>(options).serve_std(listener).await,
        Profile::Bench => profile::bench::<Rt>(options).serve_std(listener).await,
        Profile::EngineIo => {
            engine_profile::engine_io::<Rt>(options)
                .serve_std(listener)
                .await
        }
    };
    result.map_err(|e| ServeError(format!("the server stopped: {e}")))
}
