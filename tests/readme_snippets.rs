//! The README's Rust snippets compile: every ```` ```rust ```` block of README.md appears, line
//! for line (indentation aside), in this file, inside an item the compiler checks. Edit a snippet
//! here and in the README together; `every_readme_snippet_is_compiled_here` fails when they
//! differ. (The snippets are only compiled, not run: they serve on fixed ports and reach brokers.)

#![cfg(feature = "tokio")]
#![allow(dead_code, unused_variables)]

/// "A first server".
#[rustfmt::skip]
mod a_first_server {
use sockio::{ConnectRefused, Server, Socket};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), sockio::ServerError> {
    let sio = Server::builder().build();
    sio.on_connect(|socket: Socket, handshake, auth: Option<Value>| async move {
        println!("connect {} from {:?}", socket.sid(), handshake.remote_addr);
        match auth {
            Some(auth) if auth["token"] == "secret" => Ok(()),
            _ => Err(ConnectRefused::new("not authorized").with_data(serde_json::json!({"hint": "send a token"}))),
        }
    });
    sio.on("my message", |socket: Socket, data: Value| async move {
        println!("message {data}");
        socket.emit("reply", &data).await.ok();
        "got it" // the acknowledgement, when the client asked for one
    });
    sio.on_disconnect(|socket: Socket, reason| async move {
        println!("disconnect {} ({reason})", socket.sid());
    });
    sio.serve("127.0.0.1:5000").await
}
}

/// "Inside an axum app".
#[rustfmt::skip]
async fn inside_an_axum_app() -> Result<(), Box<dyn std::error::Error>> {
let sio = sockio::Server::builder().build();
let app = axum::Router::new()
    .route("/", axum::routing::get(|| async { "hello" }))
    .layer(sockio::SocketIoLayer::new(sio.clone())); // answers /socket.io/, passes the rest on
let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
axum::serve(listener, app).await?;
    Ok(())
}

/// "Several servers: message queues".
#[rustfmt::skip]
async fn several_servers(
    sid_on_another_server: String,
    sid: String,
) -> Result<(), Box<dyn std::error::Error>> {
use sockio::server::ClientManager;

let manager = ClientManager::from_url("redis://127.0.0.1:6379/0")?.channel("socketio");
let io = sockio::Server::builder().client_manager(manager.clone()).build();
// Handlers do not change: emits, rooms, disconnects and calls reach clients on any server.
io.emit("news", &"to everyone, on every server").await?;
io.call("question", &()).to(sid_on_another_server).await?;

// A process that is not a server (a worker, a script):
let emitter = sockio::tokio::Emitter::new(&manager);
emitter.emit("news", &"from a worker").to("room-a").send().await?;
emitter.disconnect(&sid, "/").await?; // python-socketio's own emitter crashes here
    Ok(())
}

/// The lines of `text` without their indentation, blank lines left out.
fn significant_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

/// The ```` ```rust ```` blocks of a Markdown text.
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start().starts_with("```rust") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn every_readme_snippet_is_compiled_here() {
    let readme = include_str!("../README.md");
    let this_file = significant_lines(include_str!("readme_snippets.rs"));
    let blocks = rust_blocks(readme);
    assert_eq!(
        blocks.len(),
        3,
        "the README's Rust snippets: one item each above"
    );
    for block in blocks {
        let wanted = significant_lines(&block);
        assert!(
            this_file
                .windows(wanted.len())
                .any(|window| window == wanted.as_slice()),
            "this README snippet is not (or no longer) the one compiled in tests/readme_snippets.rs:\n{block}"
        );
    }
}

#[test]
fn rust_blocks_are_found_and_a_changed_line_is_told_apart() {
    let markdown = "text\n```rust\nlet a = 1;\n\n    let b = 2;\n```\n```toml\nx = 1\n```\n";
    let blocks = rust_blocks(markdown);
    assert_eq!(blocks, ["let a = 1;\n\n    let b = 2;\n"]);
    let compiled = significant_lines("fn f() {\n  let a = 1;\n  let b = 2;\n}");
    let found = |block: &str| {
        let wanted = significant_lines(block);
        compiled
            .windows(wanted.len())
            .any(|w| w == wanted.as_slice())
    };
    assert!(found(&blocks[0]));
    assert!(!found("let a = 1;\nlet b = 3;\n"));
}
