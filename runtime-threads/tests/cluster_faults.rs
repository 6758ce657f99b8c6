//! Cross-server messaging of the threads runtime when something fails part way: a Redis that
//! takes a publish but whose answer does not come back in time (the server talks to the
//! machine's real Redis through a relay that holds the answers, `sockio_testkit::link_faults`),
//! the same with RabbitMQ's confirmation, a message that comes with the subscription's
//! confirmation, and an application callback that panics on the subscriber's or the expiry
//! thread's turn.
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`); without it the tests
//! are skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI).

// The broker clients are behind features (on by default).
#![cfg(feature = "redis")]

mod support;

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use sockio_core::socketio::CommandError;
use sockio_testkit::brokers::{
    RedisWatch, count_redis_messages, reachable, redis_publish, redis_subscribers, redis_url,
    wait_for_listeners,
};
use sockio_testkit::link_faults::FaultyLink;
use sockio_testkit::raw_polling;
use sockio_threads::{CallError, ClientManager, EmitError, Server};
use support::Node;

fn server(url: &str, redis: &str, topic: &str) -> Server {
    let manager = ClientManager::from_url(url).expect("url").channel(topic);
    let io = Server::builder().client_manager(manager).build();
    wait_for_listeners(url, redis, topic, 1).expect("subscribed");
    io
}

/// A server whose Redis connections go through a relay, its publisher's connection open (so that
/// holds reach it), and a watch on its channel straight on Redis.
fn through_relay(redis: &str) -> (FaultyLink, Server, RedisWatch) {
    let link = FaultyLink::start(redis).expect("relay");
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let io = server(&format!("redis://{}", link.addr()), redis, &topic);
    io.emit("warm-up", &()).send().expect("a first publish");
    let watch = RedisWatch::subscribe(redis, &topic);
    wait_for_listeners(&redis_url(), redis, &topic, 2).expect("watch subscribed");
    (link, io, watch)
}

/// Checks that an emit failed to publish, with `reason` in its error.
fn expect_publish_error(result: Result<(), EmitError>, reason: &str) {
    match result {
        Err(EmitError::Publish(error)) => assert!(error.0.contains(reason), "{error}"),
        other => panic!("expected a publish error, got {other:?}"),
    }
}

/// Another server's emits with a callback that the client never answers are awaited here only for
/// `remote_answer_timeout` (python-socketio's message does not carry the asking server's
/// timeout): before, each stayed awaited for as long as the client was connected, until its
/// acknowledgements were full and nothing could ask it anything any more.
#[test]
fn remote_emits_a_client_never_answers_are_not_awaited_forever() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    // A small cap on awaited acknowledgements makes "full" quick to reach.
    let holding = Server::builder()
        .client_manager(
            ClientManager::from_url(&redis_url())
                .expect("url")
                .channel(&topic),
        )
        .max_pending_acks(4)
        .remote_answer_timeout(Duration::from_secs(6))
        .build();
    let asking = server(&redis_url(), &redis, &topic);
    wait_for_listeners(&redis_url(), &redis, &topic, 2).expect("both subscribed");
    let addr = support::serve(&holding);
    let mut client = Node::spawn(
        &format!("http://{addr}"),
        sockio_testkit::handler_scripts::NEVER_ANSWERS_QUESTIONS,
    );
    let sid = client.expect("connected");
    let sid = sid.as_str().expect("sid");
    for _ in 0..4 {
        asking
            .emit("question", &())
            .to(sid)
            .callback(Some(Duration::from_millis(200)), |_: Result<(), _>| {})
            .send()
            .expect("published");
        client.expect("asked");
    }
    // The four awaited answers fill the client's acknowledgements (their 6 s are far from over,
    // on a loaded machine too);
    // once they have expired, it can be asked again.
    let full = holding
        .call("ping", &())
        .to(sid)
        .timeout(Duration::from_secs(5))
        .answer::<String>();
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
            .answer::<String>();
        match call {
            Err(CallError::Command(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => break other,
        }
    };
    assert_eq!(answer.expect("the client answered"), "pong");
    client.send("bye");
    client.finish();
}

/// A publish Redis took but whose answer did not come back in time is not published again (it
/// would reach the other servers twice): the emit fails, saying it may still arrive.
#[test]
fn a_publish_answered_late_is_not_published_twice() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let (link, io, watch) = through_relay(&redis);
    let connections = link.connections();
    link.hold_replies(true);
    expect_publish_error(io.emit("answered-late", &()).send(), "may or may not");
    // A second publish would follow the failed one at once.
    assert_eq!(
        watch.count_until("answered-late", Duration::from_secs(2)),
        1,
        "delivered once"
    );
    assert_eq!(link.connections(), connections, "no second attempt");
}

/// The same on RabbitMQ: a publish the broker routed but whose confirmation did not come back in
/// time is not published again on a new connection: the emit fails, saying it may still arrive,
/// and a server on the same exchange gets it once.
#[cfg(feature = "amqp")]
#[test]
fn a_publish_confirmed_late_by_rabbitmq_is_not_published_twice() {
    let url = sockio_testkit::brokers::amqp_url();
    let Some(rabbitmq) = reachable(&url) else {
        return;
    };
    let link = FaultyLink::start(&rabbitmq).expect("relay");
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let through_link = ClientManager::from_url(&url.replace(&rabbitmq, &link.addr().to_string()))
        .expect("url")
        .channel(&topic);
    let io = Server::builder().client_manager(through_link).build();
    // The other server, straight on the broker, with one client that counts what reaches it.
    let direct = ClientManager::from_url(&url).expect("url").channel(&topic);
    let other = Server::builder()
        .client_manager(direct)
        .ping_interval(Duration::from_secs(1))
        .build();
    wait_for_listeners(&url, &rabbitmq, &topic, 2).expect("both servers' queues bound");
    let addr = support::serve(&other);
    let sid = raw_polling::connected_between_polls(addr);
    // Opens the publisher's connection, so the hold below reaches it.
    io.emit("warm-up", &()).send().expect("a first publish");
    let connections = link.connections();
    link.hold_replies(true);
    let counting = std::thread::spawn(move || {
        raw_polling::count_packets(addr, &sid, "confirmed-late", Duration::from_secs(9))
    });
    expect_publish_error(io.emit("confirmed-late", &()).send(), "may or may not");
    assert_eq!(
        counting.join().expect("the counting client"),
        1,
        "delivered once"
    );
    assert_eq!(link.connections(), connections, "no second attempt");
    other.abort();
}

/// A message published as the subscription starts (on a resubscription under traffic, say) can
/// come in the same read as the subscription's confirmation: it reaches the clients like any
/// other, and the subscriber goes on. Before, it was dropped.
#[test]
fn a_message_read_with_the_subscriptions_confirmation_is_delivered() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let link = FaultyLink::start(&redis).expect("relay");
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    link.hold_new_replies(true);
    let manager = ClientManager::from_url(&format!("redis://{}", link.addr()))
        .expect("url")
        .channel(&topic);
    // Under the raw client's 15 s per request: an idle poll ends with a ping.
    let io = Server::builder()
        .client_manager(manager)
        .ping_interval(Duration::from_secs(2))
        .build();
    // Redis has subscribed the server: its confirmation waits in the relay.
    wait_for_listeners(&redis_url(), &redis, &topic, 1).expect("subscribed");
    let addr = support::serve(&io);
    let sid = raw_polling::connected_between_polls(addr);
    assert_eq!(link.connections(), 1, "only the subscriber's, all held");
    let message = r#"{"method":"emit","event":"news","data":["with-the-confirmation"],"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"elsewhere"}"#;
    redis_publish(&redis, &topic, message.as_bytes()).expect("PUBLISH");
    // Once the message waits behind the confirmation, the release hands both over in one read.
    let answers = sockio_testkit::brokers::redis_subscriber_reads(&topic, message);
    link.wait_for_held_replies(answers, Duration::from_secs(10));
    link.hold_replies(false);
    let received = raw_polling::poll_until(addr, &sid, "news", Duration::from_secs(10));
    assert_eq!(received, r#"42["news","with-the-confirmation"]"#);
    // The subscriber goes on: a later message arrives as well.
    let later = message.replace("with-the-confirmation", "later");
    redis_publish(&redis, &topic, later.as_bytes()).expect("PUBLISH");
    let received = raw_polling::poll_until(addr, &sid, "news", Duration::from_secs(10));
    assert_eq!(received, r#"42["news","later"]"#);
}

/// An emit callback that panics when the answer comes from another server, or when it times out,
/// is the application's bug: the subscriber goes on hearing the other servers, and later
/// callbacks and calls still get their answers and their timeouts.
#[test]
fn a_panicking_remote_callback_stops_neither_the_subscriber_nor_the_timeouts() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let io = server(&redis_url(), &redis, &topic);
    let host_id = io.host_id().expect("host id").to_owned();
    // Remote callbacks 1 and 2 (a fresh server numbers them from 1): the first panics.
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(30)),
            |_: Result<String, CallError>| panic!("an application bug in an emit callback"),
        )
        .send()
        .expect("published");
    let (answers, answered) = channel();
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(30)),
            move |answer: Result<String, CallError>| {
                let _ = answers.send(answer.map_err(|e| e.to_string()));
            },
        )
        .send()
        .expect("published");
    for id in [1, 2] {
        let answer = format!(
            r#"{{"method":"callback","host_id":"{host_id}","sid":"elsewhere","namespace":"/","id":{id},"args":["hi"]}}"#
        );
        redis_publish(&redis, &topic, answer.as_bytes()).expect("PUBLISH");
    }
    let second = answered
        .recv_timeout(Duration::from_secs(10))
        .expect("the second answer reached its callback");
    assert_eq!(second, Ok("hi".to_owned()));

    // A callback that panics when it times out.
    let (timed_out, expired) = channel();
    io.emit("question", &())
        .to("nobody-here")
        .callback(
            Some(Duration::from_millis(200)),
            move |_: Result<String, CallError>| {
                let _ = timed_out.send(());
                panic!("an application bug in a timed-out callback")
            },
        )
        .send()
        .expect("published");
    expired
        .recv_timeout(Duration::from_secs(10))
        .expect("the callback timed out");
    let (outcomes, outcome) = channel();
    let call = io
        .call("question", &())
        .to("sid-of-nobody")
        .timeout(Duration::from_millis(500));
    std::thread::spawn(move || {
        let _ = outcomes.send(call.answer::<String>());
    });
    let outcome = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("the call timed out in time");
    assert!(matches!(outcome, Err(CallError::Timeout)), "{outcome:?}");
    assert_eq!(redis_subscribers(&redis, &topic).expect("NUMSUB"), 1);
}

/// An emit whose message is over the broker's limit fails with the reason instead of reaching
/// Redis (which would cut every subscriber past its pub/sub output limit).
#[test]
fn a_message_over_the_brokers_limit_is_refused() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let manager = ClientManager::from_url(&redis_url())
        .expect("url")
        .channel(&topic)
        .max_message_size(1000);
    let io = Server::builder().client_manager(manager).build();
    wait_for_listeners(&redis_url(), &redis, &topic, 1).expect("subscribed");
    let counted = count_redis_messages(&redis, &topic, "sized", Duration::from_secs(2));
    wait_for_listeners(&redis_url(), &redis, &topic, 2).expect("counter subscribed");
    expect_publish_error(
        io.emit("sized", &"x".repeat(2000)).send(),
        "over the broker's limit",
    );
    io.emit("sized", &"small").send().expect("under the limit");
    assert_eq!(counted.join().expect("counter"), 1, "only the small one");
}

/// A graceful shutdown returns once what was queued for the other servers is published (within
/// its grace), so a process ending right after it loses nothing: here a message waiting behind
/// a publish whose answer is late, checked by cutting the path to Redis as soon as the
/// shutdown returns.
#[test]
fn shutdown_publishes_what_is_still_queued() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let (link, io, mut watch) = through_relay(&redis);
    link.hold_replies(true);
    // The first publish reaches Redis and waits for its answer (failing after the publish
    // timeout)...
    let first = io.clone();
    std::thread::spawn(move || first.emit("held", &()).send());
    assert!(watch.wait_for("held", Duration::from_secs(10)), "published");
    // ...so this one (queued before `close_room` returns) waits in the queue behind it.
    io.close_room("last-words").expect("close_room");
    io.shutdown(Duration::from_secs(15));
    drop(link);
    assert_eq!(
        watch.count_until("last-words", Duration::from_secs(2)),
        1,
        "published before the end"
    );
}

/// Dropping a server with emit callbacks still waiting for answers from other servers calls them
/// with `Disconnected` (nothing can answer them any more), instead of never.
#[test]
fn dropping_the_server_ends_the_remote_callbacks_still_waiting() {
    let Some(redis) = reachable(&redis_url()) else {
        return;
    };
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let io = server(&redis_url(), &redis, &topic);
    let (answers, answered) = channel();
    io.emit("question", &())
        .to("room-elsewhere")
        .callback(
            Some(Duration::from_secs(60)),
            move |answer: Result<String, CallError>| {
                let _ = answers.send(answer.map_err(|e| e.to_string()));
            },
        )
        .send()
        .expect("published");
    drop(io);
    let outcome = answered
        .recv_timeout(Duration::from_secs(10))
        .expect("the callback was called");
    assert!(
        outcome.as_ref().is_err_and(|e| e.contains("disconnected")),
        "{outcome:?}"
    );
}

/// A server dropped (or shut down, `shut_down`) leaves its broker within about a second: its
/// subscriber thread looks at whether the server is still there every second, not only at its
/// next keepalive (15 s). Seen from a relay in front of the broker, which counts the connections
/// made through it that are still open.
fn a_gone_server_closes_its_broker_connections(url: &str, shut_down: bool) {
    let Some(addr) = reachable(url) else {
        return;
    };
    let link = FaultyLink::start(&addr).expect("relay");
    let topic = sockio_testkit::brokers::fresh_channel("sockio-threads-faults");
    let relayed = url.replace(&addr, &link.addr().to_string());
    let manager = ClientManager::from_url(&relayed)
        .expect("url")
        .channel(&topic);
    let io = Server::builder().client_manager(manager).build();
    wait_for_listeners(url, &addr, &topic, 1).expect("subscribed");
    // Nothing is published: a message on the channel would wake the subscriber, which would then
    // notice the server gone whatever the rule.
    assert_eq!(link.open_connections(), 1, "the subscriber's connection");
    if shut_down {
        io.shutdown(Duration::from_secs(1));
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dropped_server_closes_its_redis_connections() {
    a_gone_server_closes_its_broker_connections(&redis_url(), false);
}

#[cfg(feature = "amqp")]
#[test]
fn a_shut_down_server_closes_its_rabbitmq_connections() {
    a_gone_server_closes_its_broker_connections(&sockio_testkit::brokers::amqp_url(), true);
}
