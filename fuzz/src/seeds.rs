//! The seed corpus, as code: valid traffic of every kind from `PROTOCOL.md` plus edge cases, for
//! each target. `cargo run -p sockio-fuzz --bin write-seeds` writes it to `corpus/<target>/`;
//! a test checks the committed files match.

use sockio_core::pubsub::amqp::{self, FieldValue};

use crate::decoders::{SIO_BINARY, SIO_TEXT, eio_mode, link_mode, link_op};
use crate::http_target::flag;
use crate::http1_target::config::{END_WITH_ERROR, INTERRUPT};
use crate::input::Writer;
use crate::stateful::op;

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    eio(&mut seeds);
    sio(&mut seeds);
    http(&mut seeds);
    pubsub(&mut seeds);
    links(&mut seeds);
    stateful(&mut seeds);
    websocket(&mut seeds);
    payload(&mut seeds);
    threads_http1(&mut seeds);
    seeds
}

fn push(seeds: &mut Vec<Seed>, target: &'static str, name: &str, data: Vec<u8>) {
    seeds.push((target, format!("seed-{name}"), data));
}

fn eio(seeds: &mut Vec<Seed>) {
    use eio_mode::*;
    let mut add = |name: &str, mode: u8, body: &[u8]| {
        let mut data = vec![mode];
        data.extend_from_slice(body);
        push(seeds, "eio_decode", name, data);
    };
    add(
        "v4-open",
        TEXT_PACKET,
        br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
    );
    add("v4-close", TEXT_PACKET, b"1");
    add("v4-ping-probe", TEXT_PACKET, b"2probe");
    add("v4-pong-probe", TEXT_PACKET, b"3probe");
    add("v4-message", TEXT_PACKET, b"4hello \xe2\x82\xac");
    add("v4-upgrade", TEXT_PACKET, b"5");
    add("v4-noop", TEXT_PACKET, b"6");
    add("v4-base64", TEXT_PACKET, b"bAQIDBA==");
    add("v4-unknown-type", TEXT_PACKET, b"7x");
    add("v4-empty", TEXT_PACKET, b"");
    add("v3-base64", TEXT_PACKET | V3, b"b4AQIDBA==");
    add("v3-bad-base64", TEXT_PACKET | V3, b"b4A===");
    add("v4-ws-text", WS_TEXT, b"42[\"chat\",\"hi\"]");
    add("v4-ws-binary", WS_BINARY, b"\x01\x02\x03");
    add("v3-ws-binary", WS_BINARY | V3, b"\x04\x01\x02\x03");
    add("v3-ws-binary-bad-type", WS_BINARY | V3, b"\x09\x01");
    add("v4-payload", TEXT_PAYLOAD, b"4hello\x1e2\x1ebAQID");
    add("v4-payload-empty-parts", TEXT_PAYLOAD, b"\x1e\x1e4a\x1e");
    add("v3-payload", TEXT_PAYLOAD | V3, b"6:4hello1:2");
    add(
        "v3-payload-utf16",
        TEXT_PAYLOAD | V3,
        "3:4\u{1F600}2:4\u{e9}".as_bytes(),
    );
    add("v3-payload-base64", TEXT_PAYLOAD | V3, b"10:b4AQIDBA==");
    add(
        "v3-payload-huge-length",
        TEXT_PAYLOAD | V3,
        b"99999999999999999999999:4",
    );
    add("v3-payload-empty", TEXT_PAYLOAD | V3, b"0:");
    add(
        "v3-binary-payload",
        BINARY_PAYLOAD | V3,
        b"\x00\x06\xff4hello\x01\x04\xff\x04\x01\x02\x03",
    );
    add("v3-binary-payload-overflow", BINARY_PAYLOAD | V3, b"\x00\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\xff4");
    add("v4-binary-payload", BINARY_PAYLOAD, b"\x00\x01\xff4");
    add("jsonp", JSONP_BODY, b"d=6%3A4hello");
    add("jsonp-escapes", JSONP_BODY, b"d=8:4a%5C%5Cnb%0A&x=1");
    add("jsonp-repeated", JSONP_BODY, b"d=1:2&d=1:2");
    add("jsonp-bad-escape", JSONP_BODY, b"d=%zz");
    add("utf16", UTF16, "a\u{1F600}\u{2028}".as_bytes());
    add("any-v3-binary", 7 | 0x40 | V3, b"\x01\x03\xff\x04\xff\xfe");
}

fn sio(seeds: &mut Vec<Seed>) {
    // 3 attachments, 1008 bytes.
    let limits = 0xff;
    let mut add = |name: &str, messages: &[(u8, &[u8])]| {
        let mut w = Writer::new();
        w.u8(limits);
        for (tag, body) in messages {
            w.u8(*tag).bytes(body);
        }
        push(seeds, "sio_decode", name, w.finish());
    };
    let t = SIO_TEXT;
    let b = SIO_BINARY;
    add("connect", &[(t, b"0")]);
    add("connect-ns-auth", &[(t, br#"0/admin,{"token":"abc"}"#)]);
    add("connect-v4-query", &[(t, b"0/admin?token=abc,")]);
    add("disconnect", &[(t, b"1/admin,")]);
    add("event", &[(t, br#"2["chat",{"text":"hi","n":1.5}]"#)]);
    add("event-ack", &[(t, br#"2/admin,12["chat"]"#)]);
    add("ack", &[(t, br#"312["ok",null]"#)]);
    add(
        "connect-error",
        &[(t, br#"4{"message":"not allowed","data":{"code":1}}"#)],
    );
    // JSON the packet codec reads and writes itself next to JSON it leaves to serde_json.
    add(
        "event-json-mix",
        &[(
            t,
            "2[\"m\",\"plain\",\"tab\\t \\\"q\\\" \\u00e9 é\",-12,0,1e3,-0,1.5,999999999999999999999,\
             {\"k\":[true,false,null,{\"a\":\"b\",\"a\":\"c\"}],\"\\n\":[]}, [[[[\"d\"]]]] ]"
                .as_bytes(),
        )],
    );
    add(
        "binary-event",
        &[
            (t, br#"51-["upload",{"_placeholder":true,"num":0}]"#),
            (b, b"\x01\x02\x03"),
        ],
    );
    add(
        "binary-ack-two",
        &[
            (
                t,
                br#"62-/admin,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ),
            (b, b"\xff"),
            (b, b""),
        ],
    );
    add("attachment-count-bomb", &[(t, b"5999999999999-[\"x\"]")]);
    add("binary-without-header", &[(b, b"\x00")]);
    add(
        "text-while-waiting",
        &[
            (t, br#"51-["a",{"_placeholder":true,"num":0}]"#),
            (t, b"2[\"b\"]"),
        ],
    );
    add("reserved-event", &[(t, br#"2["connect"]"#)]);
    add(
        "ack-id-overflow",
        &[(t, br#"299999999999999999999999["e"]"#)],
    );
    add(
        "deep-json",
        &[(
            t,
            format!("2[\"e\",{}{}]", "[".repeat(200), "]".repeat(200)).as_bytes(),
        )],
    );
    add(
        "bad-placeholder",
        &[(t, br#"51-["a",{"_placeholder":true,"num":7}]"#), (b, b"x")],
    );
}

/// An `http_request` request.
fn request(
    w: &mut Writer,
    method: u8,
    flags: u8,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    w.u8(flags | (method << flag::METHOD_SHIFT)).text(target);
    w.u8(headers.len() as u8);
    for (name, value) in headers {
        w.text(name).text(value);
    }
    w.bytes(body);
}

/// An `http_request` request in a seed: method index, flags, target, headers, body.
type SeedRequest<'a> = (u8, u8, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

fn http(seeds: &mut Vec<Seed>) {
    const GET: u8 = 0;
    const POST: u8 = 1;
    const OPTIONS: u8 = 2;
    const PUT: u8 = 3;
    let p = flag::PREFIX;
    let ws = flag::PREFIX | flag::WEBSOCKET;
    let mut add = |name: &str, config: u8, requests: &[SeedRequest]| {
        let mut w = Writer::new();
        w.u8(config);
        for (method, flags, target, headers, body) in requests {
            request(&mut w, *method, *flags, target, headers, body);
        }
        push(seeds, "http_request", name, w.finish());
    };
    let sid = "EIO=4&transport=polling&sid=sid-000001";
    add(
        "v4-polling-session",
        0,
        &[
            (GET, p, "EIO=4&transport=polling&t=N8hyd6w", &[], b""),
            (
                POST,
                p,
                sid,
                &[("content-type", "text/plain;charset=UTF-8")],
                b"40",
            ),
            (GET, p, sid, &[("accept-encoding", "gzip, deflate")], b""),
            (POST, p, sid, &[], b"42[\"ev\"]\x1e3"),
            (GET, p, sid, &[], b""),
            (GET, p, sid, &[], b""),
        ],
    );
    add(
        "v3-jsonp",
        1,
        &[
            (GET, p, "EIO=3&transport=polling&j=0", &[], b""),
            (
                POST,
                p,
                "EIO=3&transport=polling&j=0&sid=sid-000001",
                &[("content-type", "application/x-www-form-urlencoded")],
                b"d=2:40",
            ),
            (
                GET,
                p,
                "EIO=3&transport=polling&j=0&sid=sid-000001",
                &[],
                b"",
            ),
        ],
    );
    add(
        "v3-binary-polling",
        0x80,
        &[
            (GET, p, "EIO=3&transport=polling", &[], b""),
            (
                POST,
                p,
                "EIO=3&transport=polling&sid=sid-000001",
                &[("content-type", "application/octet-stream")],
                b"\x00\x02\xff40\x00\x01\xff2",
            ),
            (
                GET,
                p,
                "EIO=3&transport=polling&sid=sid-000001&b64=1",
                &[],
                b"",
            ),
        ],
    );
    add(
        "websocket-and-upgrade",
        0,
        &[
            (GET, ws, "EIO=4&transport=websocket", &[], b""),
            (GET, p, "EIO=4&transport=polling", &[], b""),
            (
                GET,
                ws,
                "EIO=4&transport=websocket&sid=sid-000002",
                &[],
                b"",
            ),
            (
                GET,
                ws,
                "EIO=4&transport=websocket&sid=sid-000002",
                &[],
                b"",
            ),
        ],
    );
    add(
        "cors",
        0,
        &[
            (
                OPTIONS,
                p,
                "EIO=4&transport=polling",
                &[
                    ("origin", "https://good.example"),
                    ("access-control-request-method", "POST"),
                ],
                b"",
            ),
            (
                GET,
                p,
                "EIO=4&transport=polling",
                &[("origin", "https://evil.example")],
                b"",
            ),
            (
                GET,
                ws,
                "EIO=4&transport=websocket",
                &[("origin", "https://evil.example")],
                b"",
            ),
            (
                GET,
                p,
                "EIO=4&transport=polling",
                &[("origin", "https://good.example")],
                b"",
            ),
        ],
    );
    add(
        "bad-requests",
        0,
        &[
            (GET, p, "EIO=9&transport=polling", &[], b""),
            (GET, p, "EIO=4&transport=carrier-pigeon", &[], b""),
            (GET, p, "EIO=4&transport=polling&sid=nope", &[], b""),
            (PUT, p, "EIO=4&transport=polling", &[], b""),
            (GET, 0, "/elsewhere?EIO=4", &[], b""),
            (GET, 0, "/socket.io", &[], b""),
            (GET, p, "EIO=4&transport=websocket", &[], b""),
            (
                GET,
                p,
                "EIO=4&EIO=3&transport=polling&transport=websocket",
                &[],
                b"",
            ),
            (GET, p, "EIO=4&transport=polling%", &[], b""),
        ],
    );
    let big = vec![b'4'; 4097];
    add(
        "body-over-limit",
        0,
        &[
            (GET, p, "EIO=4&transport=polling", &[], b""),
            (POST, p, sid, &[], &big),
            (GET, p, sid, &[], b""),
        ],
    );
    add(
        "concurrent-polls",
        0x80,
        &[
            (GET, p, "EIO=4&transport=polling", &[], b""),
            (GET, p, sid, &[], b""),
            (GET, p, sid, &[], b""),
            (POST, p, sid, &[], b"1"),
        ],
    );
}

fn pubsub(seeds: &mut Vec<Seed>) {
    let mut add =
        |name: &str, json: &str| push(seeds, "pubsub_message", name, json.as_bytes().to_vec());
    let host = "0123456789abcdef0123456789abcdef";
    add(
        "emit",
        &format!(
            r#"{{"method":"emit","event":"chat","data":["hi",{{"n":1}}],"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"{host}"}}"#
        ),
    );
    add(
        "emit-rooms-skip-callback",
        &format!(
            r#"{{"method":"emit","event":"e","data":"x","namespace":"/admin","room":["a","b"],"skip_sid":["s1"],"callback":["s2","/admin",3],"host_id":"{host}"}}"#
        ),
    );
    add(
        "emit-binary",
        r#"{"method":"emit","event":"ev","data":[[{"a":{"_placeholder":true,"num":0}}],"AQ=="],"binary":true,"namespace":"/","room":"r","skip_sid":null,"callback":null}"#,
    );
    add(
        "disconnect",
        &format!(r#"{{"method":"disconnect","sid":"s1","namespace":"/","host_id":"{host}"}}"#),
    );
    add(
        "enter-room",
        r#"{"method":"enter_room","sid":"s1","room":"lobby","namespace":"/"}"#,
    );
    add(
        "leave-room",
        r#"{"method":"leave_room","sid":"s1","room":"lobby","namespace":"/"}"#,
    );
    add(
        "close-room",
        r#"{"method":"close_room","room":"lobby","namespace":"/"}"#,
    );
    add(
        "callback",
        &format!(
            r#"{{"method":"callback","host_id":"{host}","sid":"s1","namespace":"/","id":7,"args":["ok"]}}"#
        ),
    );
    add(
        "kombu-double-encoded",
        r#""{\"method\":\"close_room\",\"room\":\"r\",\"namespace\":\"/\"}""#,
    );
    add("unknown-method", r#"{"method":"frobnicate"}"#);
    add("not-an-object", "[1,2,3]");
    add(
        "bad-placeholder",
        r#"{"method":"emit","event":"ev","data":[{"_placeholder":true,"num":99}],"binary":true,"namespace":"/"}"#,
    );
    // The deepest arguments a client's packet may carry (126 levels inside its 127-level limit),
    // in a binary emit: 129 levels, read past serde_json's own limit. And nesting far past it,
    // refused without being read recursively.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    add(
        "emit-deepest-args",
        &format!(
            r#"{{"method":"emit","event":"ev","data":[[{},{{"_placeholder":true,"num":0}}],"AQ=="],"binary":true,"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"{host}"}}"#,
            nested(126)
        ),
    );
    add(
        "emit-nested-too-deep",
        &format!(
            r#"{{"method":"emit","event":"ev","data":[{}],"namespace":"/","host_id":"{host}"}}"#,
            nested(10_000)
        ),
    );
}

fn amqp_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    amqp::encode_frame(out, kind, channel, payload);
}

fn amqp_method(out: &mut Vec<u8>, channel: u16, class: u16, id: u16, args: &[u8]) {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(args);
    amqp_frame(out, 1, channel, &payload);
}

fn shortstr(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn amqp_handshake(out: &mut Vec<u8>, heartbeat: u16) {
    let mut start = vec![0, 9];
    amqp::encode_table(
        &mut start,
        &[("product".into(), FieldValue::LongString("RabbitMQ".into()))],
    )
    .expect("small table");
    for s in ["AMQPLAIN PLAIN", "en_US"] {
        start.extend_from_slice(&(s.len() as u32).to_be_bytes());
        start.extend_from_slice(s.as_bytes());
    }
    amqp_method(out, 0, 10, 10, &start);
    let mut tune = 2047u16.to_be_bytes().to_vec();
    tune.extend_from_slice(&131_072u32.to_be_bytes());
    tune.extend_from_slice(&heartbeat.to_be_bytes());
    amqp_method(out, 0, 10, 30, &tune);
    amqp_method(out, 0, 10, 41, &[0]);
    amqp_method(out, 1, 20, 11, &[0, 0, 0, 0]);
}

fn amqp_delivery(out: &mut Vec<u8>, tag: u64, body: &[u8]) {
    let mut args = Vec::new();
    shortstr(&mut args, "ctag");
    args.extend_from_slice(&tag.to_be_bytes());
    args.push(0);
    shortstr(&mut args, "socketio");
    shortstr(&mut args, "");
    amqp_method(out, 1, 60, 60, &args);
    let mut header = 60u16.to_be_bytes().to_vec();
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    header.extend_from_slice(&0x8000u16.to_be_bytes());
    shortstr(&mut header, "application/json");
    amqp_frame(out, 2, 1, &header);
    amqp_frame(out, 3, 1, body);
}

fn links(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, data: Vec<u8>| push(seeds, "broker_links", name, data);
    let input = |w: &mut Writer, bytes: &[u8]| {
        w.u8(link_op::INPUT).bytes(bytes);
    };

    // RESP decoder: replies of every type, split at awkward places, and limits.
    let mut w = Writer::new();
    w.u8(link_mode::RESP_DECODER).u8(255);
    for chunk in [
        &b"+OK\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n-ERR wrong\r\n"[..],
        b"*3\r\n$7\r\nmessage\r\n$8\r\nsocke",
        b"tio\r\n$2\r\nhi\r\n",
    ] {
        w.bytes(chunk);
    }
    add("resp-replies", w.finish());
    add(
        "resp-array-too-long",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(255)
            .bytes(b"*99999999\r\n")
            .finish(),
    );
    add(
        "resp-deep",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(255)
            .bytes(&b"*1\r\n".repeat(8))
            .finish(),
    );
    add(
        "resp-huge-bulk",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(255)
            .bytes(b"$999999999999\r\n")
            .finish(),
    );

    // A bulk string over the kept limit inside an array: dropped as it comes, the array done
    // once its 64 MiB came (more than a fuzz input holds: the drop itself is what runs here).
    add(
        "resp-dropped-bulk",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(255)
            .bytes(b"*2\r\n$67108865\r\n")
            .bytes(b"xxxx\r\n:1\r\n")
            .finish(),
    );
    // The same under a kept limit of 8 bytes: a pub/sub message dropped and the next kept; a
    // dropped string as the last item, reported before its end arrives, its CRLF split; then
    // (other seeds) two in one reply, and one whose CRLF is wrong.
    let mut w = Writer::new();
    w.u8(link_mode::RESP_DECODER).u8(8);
    for chunk in [
        &b"*3\r\n$7\r\nmessage\r\n$3\r\nabc\r\n$10\r\nhello"[..],
        b"world\r\n*3\r\n$7\r\nmessage\r\n$3\r\nabc\r\n$2\r\n{}\r\n",
        b"*2\r\n:1\r\n$9\r\nab",
        b"cdefghi\r",
        b"\n+OK\r\n",
    ] {
        w.bytes(chunk);
    }
    add("resp-small-limit", w.finish());
    add(
        "resp-small-limit-two-dropped",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(3)
            .bytes(b"*2\r\n$4\r\nabcd\r\n$4\r\nefgh\r\n")
            .finish(),
    );
    add(
        "resp-small-limit-unterminated",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(3)
            .bytes(b"*2\r\n:1\r\n$4\r\nab")
            .bytes(b"cdX\n:2\r\n")
            .finish(),
    );
    // A message over the limit reported before its bytes are all in: the reference, given the
    // rest, finishes the same reply.
    add(
        "resp-small-limit-reported-early",
        Writer::new()
            .u8(link_mode::RESP_DECODER)
            .u8(8)
            .bytes(b"+OK\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$20\r\nabc")
            .bytes(b"defgh")
            .finish(),
    );

    // Redis subscriber with AUTH, SELECT and SETNAME, then a message and a ping.
    let mut w = Writer::new();
    w.u8(link_mode::REDIS_SUBSCRIBER).u8(8 | 1);
    input(&mut w, b"+OK\r\n+OK\r\n+OK\r\n");
    input(&mut w, b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n");
    input(
        &mut w,
        b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$13\r\n{\"method\":1}\r\n",
    );
    w.u8(link_op::TICK);
    input(&mut w, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    add("redis-subscriber", w.finish());
    // A message over the kept limit: reported when its length comes, its bytes thrown away.
    let mut w = Writer::new();
    w.u8(link_mode::REDIS_SUBSCRIBER).u8(0);
    input(
        &mut w,
        b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n",
    );
    input(
        &mut w,
        b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$67108865\r\nxx",
    );
    input(&mut w, b"xxxx");
    add("redis-message-too-large", w.finish());
    let mut w = Writer::new();
    w.u8(link_mode::REDIS_SUBSCRIBER).u8(8);
    input(&mut w, b"-WRONGPASS invalid username-password pair\r\n");
    add("redis-auth-refused", w.finish());
    let mut w = Writer::new();
    w.u8(link_mode::REDIS_PUBLISHER).u8(0);
    input(&mut w, b"+OK\r\n");
    w.u8(link_op::PUBLISH).bytes(b"{\"method\":\"emit\"}");
    w.u8(link_op::PUBLISH).bytes(b"x");
    input(&mut w, b":2\r\n-ERR no\r\n");
    add("redis-publisher", w.finish());

    // AMQP subscriber: setup, a delivery split across reads, heartbeats, a close.
    let mut broker = Vec::new();
    amqp_handshake(&mut broker, 1);
    amqp_method(&mut broker, 1, 40, 11, &[]);
    let mut declare_ok = Vec::new();
    shortstr(&mut declare_ok, "q");
    declare_ok.extend_from_slice(&[0; 8]);
    amqp_method(&mut broker, 1, 50, 11, &declare_ok);
    amqp_method(&mut broker, 1, 50, 21, &[]);
    amqp_method(&mut broker, 1, 60, 11, &[]);
    amqp_method(&mut broker, 1, 60, 21, b"\x04ctag");
    let mut delivery = Vec::new();
    amqp_delivery(
        &mut delivery,
        1,
        br#"{"method":"close_room","room":"r","namespace":"/"}"#,
    );
    let mut w = Writer::new();
    w.u8(link_mode::AMQP_SUBSCRIBER).u8(1);
    input(&mut w, &broker);
    let (a, b) = delivery.split_at(20);
    input(&mut w, a);
    input(&mut w, b);
    w.u8(link_op::TICK).u16(40);
    input(&mut w, &[8, 0, 0, 0, 0, 0, 0, 0xce]);
    w.u8(link_op::TICK).u16(200);
    w.u8(link_op::CLOSE);
    let mut close_ok = Vec::new();
    amqp_method(&mut close_ok, 0, 10, 51, &[]);
    input(&mut w, &close_ok);
    add("amqp-subscriber", w.finish());

    // AMQP publisher: setup, publishes, a confirm, a broker-initiated close.
    let mut broker = Vec::new();
    amqp_handshake(&mut broker, 0);
    amqp_method(&mut broker, 1, 40, 11, &[]);
    amqp_method(&mut broker, 1, 85, 11, &[]);
    let mut w = Writer::new();
    w.u8(link_mode::AMQP_PUBLISHER).u8(0);
    input(&mut w, &broker);
    w.u8(link_op::PUBLISH).bytes(b"{\"method\":\"emit\"}");
    w.u8(link_op::PUBLISH).bytes(&[b'x'; 300]);
    let mut ack = Vec::new();
    let mut args = 1u64.to_be_bytes().to_vec();
    args.push(1);
    amqp_method(&mut ack, 1, 60, 80, &args);
    let mut close = 320u16.to_be_bytes().to_vec();
    shortstr(
        &mut close,
        "CONNECTION_FORCED - broker forced connection closure",
    );
    close.extend_from_slice(&[0, 0, 0, 0]);
    amqp_method(&mut ack, 0, 10, 50, &close);
    input(&mut w, &ack);
    add("amqp-publisher", w.finish());

    let mut table = Vec::new();
    amqp::encode_table(
        &mut table,
        &[
            ("b".into(), FieldValue::Bool(true)),
            ("i".into(), FieldValue::I64(-1)),
            ("f".into(), FieldValue::F64(1.5)),
            (
                "d".into(),
                FieldValue::Decimal {
                    scale: 2,
                    value: 314,
                },
            ),
            ("s".into(), FieldValue::LongString("text".into())),
            (
                "a".into(),
                FieldValue::Array(vec![
                    FieldValue::U8(1),
                    FieldValue::Void,
                    FieldValue::Timestamp(9),
                ]),
            ),
            (
                "t".into(),
                FieldValue::Table(vec![("x".into(), FieldValue::I16(-2))]),
            ),
        ],
    )
    .expect("small table");
    let mut data = vec![link_mode::AMQP_TABLE];
    data.extend_from_slice(&table);
    add("amqp-table", data);
    let mut data = vec![link_mode::AMQP_TABLE, 0, 0, 0, 40];
    for _ in 0..10 {
        data.extend_from_slice(b"\x01kF\x00\x00\x00\x20");
    }
    add("amqp-table-deep", data);
    let mut frames = Vec::new();
    amqp_frame(&mut frames, 8, 0, &[]);
    amqp_method(&mut frames, 1, 60, 80, &[0; 9]);
    let mut w = Writer::new();
    w.u8(link_mode::AMQP_FRAMES).u16(4096);
    w.bytes(&frames);
    w.bytes(b"\x01\x00\x01\xff\xff\xff\xff");
    add("amqp-frames", w.finish());
}

/// Builds a stateful script.
struct Script(Writer);

impl Script {
    fn new(config: u8) -> Self {
        let mut w = Writer::new();
        w.u8(config);
        Script(w)
    }
    fn op(&mut self, code: u8, operands: &[u8]) -> &mut Self {
        self.0.u8(code).raw(operands);
        self
    }
    fn ws_text(&mut self, client: u8, text: &str) -> &mut Self {
        self.0.u8(op::WS_TEXT).u8(client).text(text);
        self
    }
    fn ws_binary(&mut self, client: u8, bytes: &[u8]) -> &mut Self {
        self.0.u8(op::WS_BINARY).u8(client).bytes(bytes);
        self
    }
    fn post(&mut self, client: u8, flags: u8, body: &[u8]) -> &mut Self {
        self.0.u8(op::POST).u8(client).u8(flags).bytes(body);
        self
    }
    fn post_start(&mut self, client: u8, flags: u8, body: &[u8]) -> &mut Self {
        self.0.u8(op::POST_START).u8(client).u8(flags).bytes(body);
        self
    }
    fn advance(&mut self, millis: u16) -> &mut Self {
        self.0.u8(op::ADVANCE).u16(millis);
        self
    }
    fn raw(&mut self, client: u8, method: u8, ws: u8, suffix: &str, body: &[u8]) -> &mut Self {
        self.0
            .u8(op::RAW)
            .u8(client)
            .u8(method)
            .u8(ws)
            .text(suffix)
            .bytes(body);
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        self.0.finish()
    }
}

fn stateful(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, data: Vec<u8>| push(seeds, "endpoint_stateful", name, data);
    const ACCEPT: [u8; 2] = [0, 0];
    const REJECT: [u8; 2] = [0, 1];
    const WS_V4: u8 = 4;
    const POLL_V4: u8 = 0;
    const POLL_V3: u8 = 1;
    const WS_V3: u8 = 5;

    // v5 over polling: join, events both ways with acks, heartbeats, disconnect.
    add(
        "v4-polling",
        Script::new(0)
            .op(op::HANDSHAKE, &[POLL_V4])
            .post(0, 0, b"40")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::POLL, &[0])
            .op(op::EMIT, &[0, 0, 2])
            .op(op::POLL, &[0])
            .post(0, 0, b"430[\"ok\"]\x1e421[\"ask\",1]")
            .op(op::ACK, &[0, 0])
            .op(op::POLL, &[0])
            .advance(1_000)
            .post(0, 0, b"3")
            .op(op::DISCONNECT, &[0, 0])
            .op(op::POLL, &[0])
            .finish(),
    );
    // POSTs whose start comes before their body: one overlapping another (refused, the session
    // ends, the first's body comes late), one routing answers itself (a bad JSONP index, never
    // started), one the session refuses once its body is there (transport `websocket`), one with
    // another EIO whose client leaves mid-body (refused whatever its body, so nothing ends), one
    // finished, one abandoned mid-body.
    add(
        "posts-started",
        Script::new(0)
            .op(op::HANDSHAKE, &[POLL_V4])
            .post(0, 0, b"40")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::POLL, &[0])
            .post_start(0, 0, b"42[\"late\"]")
            .op(op::POLL, &[0])
            .post_start(0, 0, b"6")
            .op(op::POST_END, &[0, 0])
            .op(op::HANDSHAKE, &[POLL_V4])
            .post(1, 0, b"40")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .post_start(1, 4, b"6")
            .post_start(1, 8, b"6")
            .op(op::POST_END, &[1, 0])
            .post_start(1, 16, b"6")
            .op(op::POST_END, &[1, 1])
            .post_start(1, 0, b"42[\"e\"]")
            .op(op::POST_END, &[1, 0])
            .post_start(1, 0, b"42[\"cut\"]")
            .op(op::POST_END, &[1, 1])
            .finish(),
    );
    // v5 over WebSocket: namespaces, rooms, broadcast, binary both ways.
    add(
        "v4-websocket",
        Script::new(0x80)
            .op(op::HANDSHAKE, &[WS_V4])
            .ws_text(0, "40")
            .ws_text(0, "40/admin,{\"token\":\"t\"}")
            .ws_text(0, "40/nope,")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::ANSWER_CONNECT, &REJECT)
            .op(op::JOIN, &[0, 0, 1])
            .op(op::BROADCAST, &[0, 1, 1])
            .op(op::BROADCAST, &[0, 0, 0])
            .ws_text(0, "451-[\"up\",{\"_placeholder\":true,\"num\":0}]")
            .ws_binary(0, b"\x01\x02")
            .ws_text(0, "42[\"chat\",\"hi\"]")
            .ws_text(0, "3")
            .op(op::EMIT, &[0, 0, 3])
            .advance(800)
            .ws_text(0, "41")
            .op(op::CLOSE, &[0])
            .finish(),
    );
    // What is larger than the outbound queue's byte cap: an emit, a broadcast and an answer,
    // each refused whole with the client kept, then an emit that fits.
    add(
        "oversized-sends",
        Script::new(0x80)
            .op(op::HANDSHAKE, &[WS_V4])
            .ws_text(0, "40")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::JOIN, &[0, 0, 1])
            .op(op::EMIT, &[0, 0, 4])
            .op(op::BROADCAST, &[0, 1, 4])
            .ws_text(0, "421[\"q\"]")
            .op(op::ACK, &[0, 4])
            .op(op::EMIT, &[0, 0, 0])
            .finish(),
    );
    // Engine.IO 3 (Socket.IO v4): polling, then the WebSocket upgrade.
    add(
        "v3-upgrade",
        Script::new(0)
            .op(op::HANDSHAKE, &[POLL_V3])
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::POLL, &[0])
            .op(op::POLL, &[0])
            .op(op::UPGRADE, &[0])
            .ws_text(0, "2probe")
            .ws_text(0, "5")
            .op(op::EMIT, &[0, 0, 1])
            .ws_text(0, "2")
            .advance(2_000)
            .op(op::WS_CLOSE, &[0, 1])
            .finish(),
    );
    // An abandoned upgrade and an aborted poll.
    add(
        "abandoned-upgrade",
        Script::new(0)
            .op(op::HANDSHAKE, &[POLL_V4])
            .op(op::POLL, &[0])
            .op(op::UPGRADE, &[0])
            .ws_text(0, "2probe")
            .op(op::ABORT, &[0])
            .advance(5_000)
            .finish(),
    );
    // A client that stops reading while it is sent more than the caps allow.
    let mut script = Script::new(0);
    script
        .op(op::HANDSHAKE, &[WS_V4])
        .ws_text(0, "40")
        .op(op::ANSWER_CONNECT, &ACCEPT)
        .op(op::SET_READING, &[0, 0]);
    for _ in 0..40 {
        script.op(op::EMIT, &[0, 0, 1]);
    }
    add("slow-reader", script.op(op::SET_READING, &[0, 1]).finish());
    // A client whose queue is over half full sends an event (held until its writer catches up)
    // and answers a ping (handled at once), then reads again.
    let mut script = Script::new(0);
    script
        .op(op::HANDSHAKE, &[WS_V4])
        .ws_text(0, "40")
        .op(op::ANSWER_CONNECT, &ACCEPT)
        .op(op::SET_READING, &[0, 0]);
    for _ in 0..20 {
        script.op(op::EMIT, &[0, 0, 0]);
    }
    script
        .ws_text(0, "42[\"held\"]")
        .advance(1_000)
        .ws_text(0, "3")
        .advance(700)
        .op(op::SET_READING, &[0, 1]);
    add("slow-reader-heartbeat", script.finish());
    // JSONP (Engine.IO 3 only) and the b64 binary fallback.
    add(
        "v3-jsonp-b64",
        Script::new(1)
            .op(op::HANDSHAKE, &[POLL_V3 | 16 | 8])
            .post(0, 2, b"d=9:40/admin,")
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .op(op::EMIT, &[0, 1, 1])
            .op(op::POLL, &[0])
            .finish(),
    );
    // Attachments that never arrive, a count bomb, oversized messages.
    add(
        "attachment-bombs",
        Script::new(0)
            .op(op::HANDSHAKE, &[WS_V3])
            .op(op::ANSWER_CONNECT, &ACCEPT)
            .ws_text(0, "452-[\"up\",{\"_placeholder\":true,\"num\":0}]")
            .ws_binary(0, b"\x04\x01")
            .advance(2_500)
            .op(op::HANDSHAKE, &[WS_V4])
            .ws_text(1, "40")
            .ws_text(1, "4599999-[\"x\"]")
            .op(op::HANDSHAKE, &[POLL_V4])
            .post(2, 0, &[b'4'; 5000])
            .finish(),
    );
    // Raw requests with the client's sid: wrong methods, transports, duplicate polls.
    add(
        "raw-requests",
        Script::new(0)
            .op(op::HANDSHAKE, &[POLL_V4])
            .raw(0, 0, 0, "&transport=polling", b"")
            .raw(0, 0, 0, "&transport=polling", b"")
            .raw(0, 3, 0, "&transport=polling", b"")
            .raw(0, 0, 1, "&transport=websocket", b"")
            .raw(0, 1, 0, "&transport=polling&EIO=3", b"40")
            .raw(0, 2, 0, "&transport=polling", b"")
            .op(op::HANDSHAKE, &[3])
            .finish(),
    );
    // Pending acknowledgements past the cap, then timeouts.
    let mut script = Script::new(0);
    script
        .op(op::HANDSHAKE, &[WS_V4])
        .ws_text(0, "40")
        .op(op::ANSWER_CONNECT, &ACCEPT);
    for _ in 0..6 {
        script.op(op::EMIT, &[0, 0, 2]);
    }
    add("ack-cap", script.advance(1_000).ws_text(0, "30[]").finish());
}

fn websocket(seeds: &mut Vec<Seed>) {
    use sockio_core::websocket::client_frame;
    const MASK: [u8; 4] = [0x12, 0x9a, 0x00, 0xff];
    // Limit selector 3 (1,000,000 bytes) unless a case is about the limit.
    let mut add = |name: &str, limit: u8, frames: Vec<Vec<u8>>| {
        let mut data = vec![limit, name.len() as u8];
        data.extend(frames.concat());
        push(seeds, "websocket_frames", name, data);
    };
    add(
        "socketio-traffic",
        3,
        vec![
            client_frame(0x81, b"40", MASK),
            client_frame(0x81, b"42[\"chat\",\"hi \xe2\x82\xac\"]", MASK),
            client_frame(0x82, &[1, 2, 3], MASK),
            client_frame(0x81, b"3", MASK),
        ],
    );
    add(
        "fragments-with-ping",
        3,
        vec![
            client_frame(0x01, b"42[\"a", MASK),
            client_frame(0x89, b"ping", MASK),
            client_frame(0x00, b"bc", MASK),
            client_frame(0x80, b"\"]", MASK),
        ],
    );
    add("length-16", 3, vec![client_frame(0x82, &[7; 300], MASK)]);
    add("length-64", 3, vec![client_frame(0x82, &[7; 70_000], MASK)]);
    add(
        "close-with-reason",
        3,
        vec![
            client_frame(0x88, b"\x03\xe8bye", MASK),
            client_frame(0x81, b"after", MASK),
        ],
    );
    add("too-long", 1, vec![client_frame(0x82, &[0; 126], MASK)]);
    add(
        "too-long-fragments",
        1,
        vec![
            client_frame(0x02, &[0; 100], MASK),
            client_frame(0x80, &[0; 100], MASK),
        ],
    );
    add(
        "invalid-utf8",
        3,
        vec![client_frame(0x81, b"\xff\xfe", MASK)],
    );
    add("unmasked", 3, vec![vec![0x81, 0x02, b'h', b'i']]);
    add("reserved-bits", 3, vec![client_frame(0xC1, b"x", MASK)]);
    add(
        "stray-continuation",
        3,
        vec![client_frame(0x80, b"x", MASK)],
    );
    add("long-ping", 3, vec![client_frame(0x89, &[0; 126], MASK)]);
}

fn payload(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, text: &str, attachments: &[&[u8]]| {
        let mut w = Writer::new();
        w.bytes(text.as_bytes());
        for attachment in attachments {
            w.bytes(attachment);
        }
        push(seeds, "payload_args", name, w.finish());
    };
    add("no-arguments", r#"2["e"]"#, &[]);
    add("one-string", r#"2["e","hello"]"#, &[]);
    add(
        "numbers",
        r#"2["e",-3,255,18446744073709551615,1.5e300,-0]"#,
        &[],
    );
    add(
        "record",
        r#"2["e",{"name":"n","tags":["a","b"],"count":null,"child":{"name":"c","count":2}}]"#,
        &[],
    );
    add(
        "record-binary",
        r#"51-["e",{"name":"n","data":{"_placeholder":true,"num":0},"count":1}]"#,
        &[b"\x00\x01"],
    );
    add(
        "shapes",
        r#"2["e",["Unit",{"New":7},{"Pair":[-1,"x"]},{"Square":{"side":2.5}}]]"#,
        &[],
    );
    add(
        "shape-blob",
        r#"51-["e",{"Blob":{"_placeholder":true,"num":0}}]"#,
        &[b"blob"],
    );
    add(
        "tagged-file",
        r#"51-["e",{"kind":"File","name":"a.bin","data":{"_placeholder":true,"num":0}}]"#,
        &[b"\xff\xfe"],
    );
    add(
        "loose-nested",
        r#"52-["e",{"id":3,"a":[true,1,"s",{"b":{"_placeholder":true,"num":1}}],"c":{"_placeholder":true,"num":0}}]"#,
        &[b"text", b"\x80"],
    );
    add("tuple", r#"2["e","s",null,[1,{"k":"v"}]]"#, &[]);
    add(
        "two-binaries",
        r#"52-["e",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#,
        &[b"first", b""],
    );
    // A text packet's object shaped like a placeholder is the client's data.
    add(
        "placeholder-lookalike",
        r#"2["e",{"_placeholder":true,"num":0},{"Blob":{"_placeholder":true,"num":0}}]"#,
        &[],
    );
    add("ack", r#"37["ok",{"n":1}]"#, &[]);
    add(
        "binary-ack",
        r#"61-/admin,9[{"_placeholder":true,"num":0}]"#,
        &[b"\x01\x02\x03"],
    );
    add("char", r#"2["e","é"]"#, &[]);
    add(
        "map-of-lists",
        r#"2["e",{"a":[1,2],"b":[],"c":[-2147483648]}]"#,
        &[],
    );
}

fn threads_http1(seeds: &mut Vec<Seed>) {
    // Limit selectors: 0 (0 bytes), 1 (10), 2 (1,000), 3 (1,000,000).
    let mut add = |name: &str, config: u8, bytes: &[u8]| {
        let mut data = vec![config, name.len() as u8];
        data.extend_from_slice(bytes);
        push(seeds, "threads_http1", name, data);
    };
    const CHUNKED: &str = "POST /socket.io/?EIO=4&transport=polling&sid=sid-000001 HTTP/1.1\r\n\
                           Host: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    add(
        "polling-get",
        3,
        b"GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\nHost: localhost:3000\r\n\
          Accept: */*\r\nCookie: io=sid-000001\r\n\r\n",
    );
    add(
        "polling-post",
        3 | INTERRUPT,
        b"POST /socket.io/?EIO=4&transport=polling&sid=sid-000001 HTTP/1.1\r\nHost: a\r\n\
          Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 30\r\n\r\n\
          42[\"chat\",\"hi\"]\x1e42[\"chat\",\"2\"]",
    );
    add(
        "pipelined",
        3,
        format!(
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\n\
             POST /b HTTP/1.1\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n40\
             {CHUNKED}2\r\n40\r\n0\r\n\r\n\
             GET /c HTTP/1.1\r\nConnection: close\r\n\r\n\
             GET /d HTTP/1.1\r\n\r\n"
        )
        .as_bytes(),
    );
    add(
        "chunked-extensions-trailers",
        3 | INTERRUPT,
        format!(
            "{CHUNKED}5;name=value\r\nhello\r\n6 ; a ;b=\"c; d\"\t\r\n world\r\n\
             001;x\r\n!\r\n0;last\r\nX-Checksum: abc\r\nX-Other:\t1 \r\n\r\nGET /next HTTP/1.1\r\n\r\n"
        )
        .as_bytes(),
    );
    add(
        "chunked-over-limit",
        1,
        format!("{CHUNKED}6\r\n012345\r\n6\r\n6789ab\r\n0\r\n\r\n").as_bytes(),
    );
    add(
        "chunked-exactly-limit-plus-one",
        1,
        format!("{CHUNKED}b\r\n0123456789a\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n").as_bytes(),
    );
    add(
        "length-over-limit",
        1,
        b"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n01234567890123456789GET / HTTP/1.1\r\n\r\n",
    );
    add(
        "expect-continue",
        3,
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc\
          POST / HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n\
          1\r\nx\r\n0\r\n\r\n",
    );
    add(
        "expect-continue-too-large",
        2,
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\nabc",
    );
    add(
        "http10",
        3,
        b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
          POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx",
    );
    add(
        "http10-chunked",
        3,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
    );
    add(
        "both-lengths",
        3,
        b"POST / HTTP/1.1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n\
          2\r\n40\r\n0\r\n\r\n",
    );
    add(
        "other-codings",
        3,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
    );
    add(
        "two-lengths",
        3,
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    );
    add(
        "bare-lf-and-empty-lines",
        3 | INTERRUPT,
        b"\r\n\n\r\nGET /a HTTP/1.1\nHost: x\nX-A: 1\n\r\nPOST /b HTTP/1.1\nContent-Length: 1\n\nz",
    );
    add(
        "bad-chunk-size",
        3,
        format!("{CHUNKED}zz\r\nab\r\n0\r\n\r\n").as_bytes(),
    );
    add(
        "chunk-size-overflow",
        3,
        format!("{CHUNKED}1{:x}\r\nx", u64::MAX).as_bytes(),
    );
    add(
        "chunk-line-too-long",
        3,
        format!("{CHUNKED}1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(1024)).as_bytes(),
    );
    add(
        "chunk-data-without-crlf",
        3,
        format!("{CHUNKED}2\r\n40xx0\r\n\r\n").as_bytes(),
    );
    add(
        "chunked-cut-short",
        3,
        format!("{CHUNKED}5;x=y\r\nhel").as_bytes(),
    );
    add(
        "chunked-cut-short-by-timeout",
        3 | END_WITH_ERROR,
        format!("{CHUNKED}5;x=y\r\nhel").as_bytes(),
    );
    add(
        "length-cut-short",
        3 | END_WITH_ERROR | INTERRUPT,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
    );
    add(
        "malformed-trailer",
        3,
        format!("{CHUNKED}0\r\nno colon\r\n\r\n").as_bytes(),
    );
    add(
        "chunk-extensions-over-the-cap",
        3,
        format!(
            "{CHUNKED}{}0\r\n\r\n",
            format!("1;{}\r\nx\r\n", "e".repeat(1000)).repeat(17)
        )
        .as_bytes(),
    );
    add(
        "head-too-large",
        3,
        format!("GET / HTTP/1.1\r\nCookie: {}\r\n\r\n", "c".repeat(65_536)).as_bytes(),
    );
    add(
        "trailer-too-large",
        3,
        format!("{CHUNKED}0\r\nX-T: {}\r\n\r\n", "t".repeat(65_536)).as_bytes(),
    );
    add(
        "too-many-headers",
        3,
        format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            (0..101)
                .map(|i| format!("x-{i}: y\r\n"))
                .collect::<String>()
        )
        .as_bytes(),
    );
    add(
        "malformed-heads",
        3,
        b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
    );
    add("http2", 3, b"GET / HTTP/2.0\r\n\r\n");
    add(
        "control-byte-in-value",
        3,
        b"POST / HTTP/1.1\r\nContent-Length: 3\x0c\r\n\r\nabc",
    );
    add(
        "websocket-upgrade",
        3,
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x82\x12\x9a\x00\xff\x26\xaa",
    );
    add(
        "absolute-target",
        3,
        b"OPTIONS * HTTP/1.1\r\n\r\nGET http://a.example/x?y HTTP/1.1\r\n\r\n\
          CONNECT a.example:443 HTTP/1.1\r\n\r\n",
    );
}
