//! Cross-server messaging when something fails part way: a Redis that stops reading, one that
//! takes a publish but whose answer does not come back in time, a slow path to RabbitMQ (the
//! servers talk to the machine's real brokers through a relay that holds or slows one direction,
//! `sockio_testkit::link_faults`), a message that comes with the subscription's confirmation,
//! and an application callback that panics on the subscriber's or the expiry task's turn.
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`), RabbitMQ from
//! `SOCKIO_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672//`); without them the tests are
//! skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI).

#![cfg(feature = "tokio")]

mod api_support;

use std::time::{Duration, Instant};

use sockio::core::pubsub::resp::MAX_RECEIVED;
use sockio::core::socketio::CommandError;
use sockio::server::{CallError, ClientManager, EmitError, Runtime, Server};
use sockio_testkit::brokers::{
    RedisWatch, UnixRedis, amqp_url, count_redis_messages, reachable, redis_publish,
    redis_subscribers, redis_url, wait_for_listeners,
};
use sockio_testkit::link_faults::FaultyLink;
use sockio_testkit::raw_polling::{self, SocketBuffers};

async fn wait_for_subscribers(addr: &str, channel: &str, count: i64) {
    for _ in 0..1000 {
        if redis_subscribers(addr, channel).expect("PUBSUB NUMSUB") >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} subscribers never listened on {channel}");
}

/// A tokio server on the machine's Redis (at `redis`), its manager set up by `manager`.
async fn server_on(
    redis: &str,
    channel: &str,
    manager: impl FnOnce(ClientManager) -> ClientManager,
) -> Server<sockio::tokio::Tokio> {
    let defaults = ClientManager::from_url(&redis_url())
        .expect("url")
        .channel(channel);
    let io = Server::builder().client_manager(manager(defaults)).build();
    wait_for_subscribers(redis, channel, 1).await;
    io
}

/// A server whose Redis connections go through `link`.
async fn server_through<Rt: Runtime>(link: &FaultyLink, redis: &str, channel: &str) -> Server<Rt> {
    let manager = ClientManager::from_url(&format!("redis://{}", link.addr()))
        .expect("url")
        .channel(channel);
    let io = Server::<Rt>::builder().client_manager(manager).build();
    wait_for_subscribers(redis, channel, 1).await;
    // Opens the publisher's connection, so the holds below reach it.
    io.emit("warm-up", &()).await.expect("a first publish");
    io
}

fn fresh_channel() -> String {
    sockio_testkit::brokers::fresh_channel("sockio-faults")
}

/// Checks that an emit failed to publish, with `reason` in its error.
fn expect_publish_error(result: Result<(), EmitError>, reason: &str) {
    match result {
        Err(EmitError::Publish(error)) => assert!(error.0.contains(reason), "{error}"),
        other => panic!("expected a publish error, got {other:?}"),
    }
}

/// A Redis that stops reading: the emit fails after the publish timeout instead of waiting until
/// TCP gives up (minutes), and later emits are not stuck behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_to_a_redis_that_stopped_reading_fails_in_time() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let link = FaultyLink::start(&redis).expect("relay");
    let channel = fresh_channel();
    let io: Server<sockio::tokio::Tokio> = server_through(&link, &redis, &channel).await;
    link.hold_requests(true);
    // More than the socket buffers hold, so the write itself waits.
    let big = "x".repeat(8 << 20);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), io.emit("big", &big))
        .await
        .expect("the emit waited for the stalled write");
    expect_publish_error(result, "in time");
    assert!(started.elapsed() < Duration::from_secs(20));
    // The next emit goes out on a fresh connection.
    let counted = count_redis_messages(&redis, &channel, "after-the-stall", Duration::from_secs(3));
    wait_for_subscribers(&redis, &channel, 2).await;
    io.emit("after-the-stall", &())
        .await
        .expect("published on a new connection");
    assert_eq!(counted.join().expect("counter"), 1);
}

/// A large emit over a slow path to RabbitMQ that keeps taking data is published, however much
/// longer than the publish timeout its write takes: only a write that stalls fails (as on Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_emit_over_a_slow_path_to_rabbitmq_is_published() {
    let url = amqp_url();
    let Some(rabbitmq) = reachable(&url) else {
        return;
    };
    let link = FaultyLink::start(&rabbitmq).expect("relay");
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url.replace(&rabbitmq, &link.addr().to_string()))
        .expect("url")
        .channel(&channel);
    let io = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(manager)
        .build();
    tokio::task::spawn_blocking(move || wait_for_listeners(&url, &rabbitmq, &channel, 1))
        .await
        .expect("waiting")
        .expect("the server's queue bound");
    // Opens the publisher's connection, so the throttle below reaches it.
    io.emit("warm-up", &()).await.expect("a first publish");
    // The rate lets the kernel's send buffer drain within the confirmation's timeout once the
    // write is done; the size makes the write itself last about 5.5 s at that rate, past the
    // 5 s a deadline on the whole write allowed.
    let send_buffer = SocketBuffers::of_this_machine().send_max;
    let rate = (2 << 20).max(send_buffer / 2);
    let size = rate * 11 / 2 + send_buffer;
    // RabbitMQ 4 refuses messages over 16 MiB by default (`max_message_size`).
    assert!(
        size < 16 << 20,
        "{size} bytes: this machine's send buffers are too large for the test"
    );
    let connections = link.connections();
    link.throttle_requests(u64::try_from(rate).expect("rate"));
    let big = "x".repeat(size);
    let started = Instant::now();
    io.emit("big", &big)
        .await
        .expect("published over the slow path");
    // Longer than the 5 s publish timeout: a deadline on the whole write would have failed it,
    // and the retry on a fresh (fast) connection would then have published it a second time.
    assert!(
        started.elapsed() > Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(link.connections(), connections, "published in one attempt");
}

/// A publish Redis took but whose answer did not come back in time is not published again (it
/// would reach the other servers twice): the emit fails, saying it may still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_answered_late_is_not_published_twice() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let link = FaultyLink::start(&redis).expect("relay");
    let channel = fresh_channel();
    let io: Server<sockio::tokio::Tokio> = server_through(&link, &redis, &channel).await;
    let counted = count_redis_messages(&redis, &channel, "answered-late", Duration::from_secs(9));
    wait_for_subscribers(&redis, &channel, 2).await;
    let connections = link.connections();
    link.hold_replies(true);
    let result = io.emit("answered-late", &()).await;
    expect_publish_error(result, "may or may not");
    assert_eq!(counted.join().expect("counter"), 1, "delivered once");
    assert_eq!(link.connections(), connections, "no second attempt");
}

/// The same on RabbitMQ: a publish the broker routed but whose confirmation did not come back in
/// time is not published again on a new connection (it reached the other servers twice): the
/// emit fails, saying it may still arrive, and a server on the same exchange gets it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_confirmed_late_by_rabbitmq_is_not_published_twice() {
    let url = amqp_url();
    let Some(rabbitmq) = reachable(&url) else {
        return;
    };
    let link = FaultyLink::start(&rabbitmq).expect("relay");
    let channel = fresh_channel();
    let through_link = ClientManager::from_url(&url.replace(&rabbitmq, &link.addr().to_string()))
        .expect("url")
        .channel(&channel);
    let io = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(through_link)
        .build();
    // The other server, straight on the broker, with one client that counts what reaches it.
    let direct = ClientManager::from_url(&url)
        .expect("url")
        .channel(&channel);
    let other = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(direct)
        .ping_interval(Duration::from_secs(1))
        .build();
    let (listeners_url, listeners_channel) = (url.clone(), channel.clone());
    tokio::task::spawn_blocking(move || {
        wait_for_listeners(&listeners_url, &rabbitmq, &listeners_channel, 2)
    })
    .await
    .expect("waiting")
    .expect("both servers' queues bound");
    let addr = api_support::serve(&other).await.addr;
    let sid = tokio::task::spawn_blocking(move || raw_polling::connected_between_polls(addr))
        .await
        .expect("a connected client");
    // Opens the publisher's connection, so the hold below reaches it.
    io.emit("warm-up", &()).await.expect("a first publish");
    let connections = link.connections();
    link.hold_replies(true);
    let counting = tokio::task::spawn_blocking(move || {
        raw_polling::count_packets(addr, &sid, "confirmed-late", Duration::from_secs(9))
    });
    let result = io.emit("confirmed-late", &()).await;
    expect_publish_error(result, "may or may not");
    assert_eq!(
        counting.await.expect("the counting client"),
        1,
        "delivered once"
    );
    assert_eq!(link.connections(), connections, "no second attempt");
}

/// A message published as the subscription starts (on a resubscription under traffic, say) can
/// come in the same read as the subscription's confirmation: it reaches the clients like any
/// other, and the subscriber goes on. Before, it was dropped (and in a debug build the subscriber
/// stopped for good on an assertion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_read_with_the_subscriptions_confirmation_is_delivered() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let link = FaultyLink::start(&redis).expect("relay");
    let channel = fresh_channel();
    link.hold_new_replies(true);
    let manager = ClientManager::from_url(&format!("redis://{}", link.addr()))
        .expect("url")
        .channel(&channel);
    // Under the raw client's 15 s per request: an idle poll ends with a ping.
    let io = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(manager)
        .ping_interval(Duration::from_secs(2))
        .build();
    // Redis has subscribed the server: its confirmation waits in the relay.
    wait_for_subscribers(&redis, &channel, 1).await;
    let running = api_support::serve(&io).await;
    let addr = running.addr;
    let sid = tokio::task::spawn_blocking(move || raw_polling::connected_between_polls(addr))
        .await
        .expect("a connected client");
    assert_eq!(link.connections(), 1, "only the subscriber's, all held");
    let message = r#"{"method":"emit","event":"news","data":["with-the-confirmation"],"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"elsewhere"}"#;
    redis_publish(&redis, &channel, message.as_bytes()).expect("PUBLISH");
    // Once the message waits behind the confirmation, the release hands both over in one read.
    let answers = sockio_testkit::brokers::redis_subscriber_reads(&channel, message);
    // The relay's threads fill the count: nothing on this runtime needs the blocked worker.
    tokio::task::block_in_place(|| link.wait_for_held_replies(answers, Duration::from_secs(10)));
    link.hold_replies(false);
    let news = |sid: String| {
        tokio::task::spawn_blocking(move || {
            raw_polling::poll_until(addr, &sid, "news", Duration::from_secs(10))
        })
    };
    let received = news(sid.clone()).await.expect("the client's polls");
    assert_eq!(received, r#"42["news","with-the-confirmation"]"#);
    // The subscriber goes on: a later message arrives as well.
    let later = message.replace("with-the-confirmation", "later");
    redis_publish(&redis, &channel, later.as_bytes()).expect("PUBLISH");
    let received = news(sid).await.expect("the client's polls");
    assert_eq!(received, r#"42["news","later"]"#);
}

/// A message over what a subscriber keeps (`resp::MAX_RECEIVED`, 64 MiB), published by anyone
/// who can publish on the channel to a Redis whose pub/sub output limit is lifted, is dropped
/// as it arrives instead of being held whole and handed to the clients, and the messages after
/// it still reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_subscribers_limit_is_dropped_and_the_next_one_delivered() {
    let Some(redis) = UnixRedis::start_with(&["--client-output-buffer-limit", "pubsub 0 0 0"])
    else {
        return;
    };
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&redis.url())
        .expect("url")
        .channel(&channel);
    // Under the raw client's 15 s per request: an idle poll ends with a ping. The client's queue
    // would take the large message, so only its drop keeps it from the client.
    let io = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(manager)
        .ping_interval(Duration::from_secs(2))
        .max_buffered(10_000, 4 * MAX_RECEIVED)
        .build();
    wait_for_subscribers(&redis.path(), &channel, 1).await;
    let running = api_support::serve(&io).await;
    let addr = running.addr;
    let sid = tokio::task::spawn_blocking(move || raw_polling::connected_between_polls(addr))
        .await
        .expect("a connected client");
    let message = |text: &str| {
        format!(
            r#"{{"method":"emit","event":"news","data":["{text}"],"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"elsewhere"}}"#
        )
    };
    let path = redis.path();
    let check = channel.clone();
    tokio::task::spawn_blocking(move || {
        let big = message(&"x".repeat(MAX_RECEIVED));
        redis_publish(&path, &check, big.as_bytes()).expect("PUBLISH");
        redis_publish(&path, &check, message("after-the-big-one").as_bytes()).expect("PUBLISH");
    })
    .await
    .expect("published");
    let received = tokio::task::spawn_blocking(move || {
        raw_polling::poll_until(addr, &sid, "news", Duration::from_secs(20))
    })
    .await
    .expect("the client's polls");
    assert_eq!(received, r#"42["news","after-the-big-one"]"#);
}

/// An emit callback that panics when the answer comes from another server, or when it times out,
/// is the application's bug: the subscriber goes on hearing the other servers, and later
/// callbacks and calls still get their answers and their timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_remote_callback_stops_neither_the_subscriber_nor_the_timeouts() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let channel = fresh_channel();
    let io = server_on(&redis, &channel, |manager| manager).await;
    let host_id = io.host_id().expect("host id").to_owned();
    // Remote callbacks 1 and 2 (a fresh server numbers them from 1): the first panics.
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(30)),
            |_: Result<String, CallError>| panic!("an application bug in an emit callback"),
        )
        .await
        .expect("published");
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(30)),
            move |answer: Result<String, CallError>| {
                let _ = answers.send(answer.map_err(|e| e.to_string()));
            },
        )
        .await
        .expect("published");
    for id in [1, 2] {
        let answer = format!(
            r#"{{"method":"callback","host_id":"{host_id}","sid":"elsewhere","namespace":"/","id":{id},"args":["hi"]}}"#
        );
        redis_publish(&redis, &channel, answer.as_bytes()).expect("PUBLISH");
    }
    let second = tokio::time::timeout(Duration::from_secs(10), answered.recv())
        .await
        .expect("the second answer reached its callback");
    assert_eq!(second, Some(Ok("hi".to_owned())));

    // A callback that panics when it times out.
    let (timed_out, mut expired) = tokio::sync::mpsc::unbounded_channel();
    io.emit("question", &())
        .to("nobody-here")
        .callback(
            Some(Duration::from_millis(200)),
            move |_: Result<String, CallError>| {
                let _ = timed_out.send(());
                panic!("an application bug in a timed-out callback")
            },
        )
        .await
        .expect("published");
    tokio::time::timeout(Duration::from_secs(10), expired.recv())
        .await
        .expect("the callback timed out");
    let call = io
        .call("question", &())
        .to("sid-of-nobody")
        .timeout(Duration::from_millis(500));
    let outcome = tokio::time::timeout(Duration::from_secs(10), call.answer::<String>())
        .await
        .expect("the call timed out in time");
    assert!(matches!(outcome, Err(CallError::Timeout)), "{outcome:?}");
    assert_eq!(redis_subscribers(&redis, &channel).expect("NUMSUB"), 1);
}

/// Another server's emits with a callback that the client never answers are awaited here only for
/// `remote_answer_timeout` (python-socketio's message does not carry the asking server's
/// timeout): before, each stayed awaited for as long as the client was connected, until its
/// acknowledgements were full and nothing could ask it anything any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_emits_a_client_never_answers_are_not_awaited_forever() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let channel = fresh_channel();
    // A small cap on awaited acknowledgements makes "full" quick to reach.
    let holding = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(
            ClientManager::from_url(&redis_url())
                .expect("url")
                .channel(&channel),
        )
        .max_pending_acks(4)
        .remote_answer_timeout(Duration::from_secs(6))
        .build();
    let asking = server_on(&redis, &channel, |manager| manager).await;
    wait_for_subscribers(&redis, &channel, 2).await;
    let running = api_support::serve(&holding).await;
    let mut client = api_support::Node::spawn(
        &running.url,
        sockio_testkit::handler_scripts::NEVER_ANSWERS_QUESTIONS,
    );
    let sid = client.expect("connected").await;
    let sid = sid.as_str().expect("sid");
    for _ in 0..4 {
        asking
            .emit("question", &())
            .to(sid)
            .callback(Some(Duration::from_millis(200)), |_: Result<(), _>| {})
            .await
            .expect("published");
        client.expect("asked").await;
    }
    // The four awaited answers fill the client's acknowledgements (their 6 s are far from over,
    // on a loaded machine too);
    // once they have expired, it can be asked again.
    let full = holding
        .call("ping", &())
        .to(sid)
        .timeout(Duration::from_secs(5))
        .answer::<String>()
        .await;
    assert!(
        matches!(
            full,
            Err(CallError::Command(CommandError::TooManyPendingAcks))
        ),
        "{full:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let call = holding
            .call("ping", &())
            .to(sid)
            .timeout(Duration::from_secs(5))
            .answer::<String>()
            .await;
        match call {
            Err(CallError::Command(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    assert_eq!(answer.expect("the client answered"), "pong");
    client.send("bye").await;
    client.finish().await;
}

/// An emit whose message is over the broker's limit fails with the reason (local clients still
/// get it) instead of reaching Redis, which would cut every subscriber of the channel past its
/// pub/sub output limit while the emit looked delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_brokers_limit_is_refused() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let channel = fresh_channel();
    let io = server_on(&redis, &channel, |manager| manager.max_message_size(1000)).await;
    let counted = count_redis_messages(&redis, &channel, "sized", Duration::from_secs(2));
    wait_for_subscribers(&redis, &channel, 2).await;
    expect_publish_error(
        io.emit("sized", &"x".repeat(2000)).await,
        "over the broker's limit",
    );
    io.emit("sized", &"small").await.expect("under the limit");
    assert_eq!(counted.join().expect("counter"), 1, "only the small one");
}

/// A graceful shutdown publishes what is still queued for the other servers (within its grace)
/// before the caller drops the runtime: here a message waiting behind a publish whose answer is
/// late.
#[test]
fn shutdown_publishes_what_is_still_queued() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let link = FaultyLink::start(&redis).expect("relay");
    let channel = fresh_channel();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let watch = runtime.block_on(async {
        let io: Server<sockio::tokio::Tokio> = server_through(&link, &redis, &channel).await;
        let mut watch = RedisWatch::subscribe(&redis, &channel);
        wait_for_subscribers(&redis, &channel, 2).await;
        link.hold_replies(true);
        // The first publish reaches Redis and waits for its answer (failing after the publish
        // timeout)...
        let first = io.clone();
        tokio::spawn(async move { first.emit("held", &()).await });
        assert!(watch.wait_for("held", Duration::from_secs(10)), "published");
        // ...so this one (queued before `close_room` returns) waits in the queue behind it.
        io.close_room("last-words").expect("close_room");
        io.shutdown(Duration::from_secs(15)).await;
        watch
    });
    drop(runtime);
    assert_eq!(
        watch.count_until("last-words", Duration::from_secs(2)),
        1,
        "published before the end"
    );
}

/// Dropping a server with emit callbacks still waiting for answers from other servers calls them
/// with `Disconnected` (nothing can answer them any more), instead of never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_ends_the_remote_callbacks_still_waiting() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let channel = fresh_channel();
    let io = server_on(&redis, &channel, |manager| manager).await;
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(60)),
            move |answer: Result<String, CallError>| {
                let _ = answers.send(answer.map_err(|e| e.to_string()));
            },
        )
        .await
        .expect("published");
    drop(io);
    let outcome = tokio::time::timeout(Duration::from_secs(10), answered.recv())
        .await
        .expect("the callback was called");
    let outcome = outcome.expect("an outcome");
    assert!(
        outcome.as_ref().is_err_and(|e| e.contains("disconnected")),
        "{outcome:?}"
    );
}

/// A server dropped (or shut down, `shut_down`) leaves its broker within about a second: its
/// subscriber looks at whether the server is still there every second, not only at its next
/// keepalive (15 s). Seen from a relay in front of the broker, which counts the connections made
/// through it that are still open.
async fn a_gone_server_closes_its_broker_connections<Rt: Runtime>(url: &str, shut_down: bool) {
    let Some(addr) = reachable(url) else {
        return;
    };
    let link = FaultyLink::start(&addr).expect("relay");
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url.replace(&addr, &link.addr().to_string()))
        .expect("url")
        .channel(&channel);
    let io = Server::<Rt>::builder().client_manager(manager).build();
    let (watched, watch) = (url.to_owned(), addr.clone());
    let listening = channel.clone();
    tokio::task::spawn_blocking(move || wait_for_listeners(&watched, &watch, &listening, 1))
        .await
        .expect("joined")
        .expect("the server listens");
    // Nothing is published: a message on the channel would wake the subscriber, which would then
    // notice the server gone whatever the rule.
    assert_eq!(link.open_connections(), 1, "the subscriber's connection");
    if shut_down {
        io.shutdown(Duration::from_secs(1)).await;
    } else {
        drop(io);
    }
    let gone = Instant::now();
    while link.open_connections() > 0 {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "{} connections to the broker still open {:?} after the server was gone",
            link.open_connections(),
            gone.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_server_closes_its_redis_connections_on_tokio() {
    a_gone_server_closes_its_broker_connections::<sockio::tokio::Tokio>(&redis_url(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_down_server_closes_its_redis_connections_on_smol() {
    a_gone_server_closes_its_broker_connections::<sockio_smol::Smol>(&redis_url(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_down_server_closes_its_rabbitmq_connections_on_tokio() {
    a_gone_server_closes_its_broker_connections::<sockio::tokio::Tokio>(&amqp_url(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_server_closes_its_rabbitmq_connections_on_smol() {
    a_gone_server_closes_its_broker_connections::<sockio_smol::Smol>(&amqp_url(), false).await;
}
