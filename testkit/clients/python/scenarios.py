#!/usr/bin/env python3
"""Drives python-socketio's official client through the testkit scenarios.

    python scenarios.py --client sync|async --url http://127.0.0.1:PORT \
        --transport polling|websocket|upgrade --scenario NAME[,NAME...] [--timeout-ms 10000]

`sync` is ``socketio.Client`` and `async` is ``socketio.AsyncClient``. The scenarios are written
once, in blocking style, against a small ``Peer`` facade: for ``AsyncClient`` every call is
submitted to an asyncio loop running in a background thread, so the I/O is entirely the official
async client's. Prints one JSON line per scenario,
{"scenario":"...","ok":true|false,"detail":"..."}, and exits 0 iff every scenario passed.
A scenario may print ``@@restart`` when it wants the harness to restart the server on the same
port (reconnect-after-restart).
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

import socketio

MAX_HTTP_BUFFER = 1_000_000

# How many messages `messages-in-order` sends, and how many may be unanswered at once.
IN_ORDER_COUNT = 10_000
IN_ORDER_WINDOW = 100

# Scenarios that get more than --timeout-ms, by factor (must agree with LONG_SCENARIOS in
# testkit/src/lib.rs).
LONG_SCENARIOS = {"messages-in-order": 6}

# What `client-killed` / `client-frozen` allow on top of ping interval + ping timeout before the
# server must have noticed: the observer's polling (50 ms), its round trip, and scheduling on a
# loaded machine.
HEARTBEAT_SLACK_MS = 1000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--client", choices=["sync", "async"], required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", choices=["polling", "websocket", "upgrade"], required=True)
    p.add_argument("--scenario", "--scenarios", action="append")
    p.add_argument("--timeout-ms", type=int, default=10_000)
    # Internal: the process `client-killed` / `client-frozen` start and then kill or freeze.
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if not a.scenario and not a.child:
        p.error("--scenario is required")
    a.scenarios = [s for chunk in (a.scenario or []) for s in chunk.split(",") if s]
    return a


ARGS = parse_args()


class ScenarioError(Exception):
    pass


class ScenarioTimeout(ScenarioError):
    pass


def fail(msg):
    raise ScenarioError(msg)


def show(v, limit=200):
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def assert_equal(actual, expected, what):
    if actual != expected or not same_types(actual, expected):
        fail(f"{what}: expected {show(expected)}, got {show(actual)}")


def same_types(a, b):
    """Structural equality that also tells bytes from str and bool from int."""
    if isinstance(b, (bytes, bytearray)):
        return isinstance(a, (bytes, bytearray))
    if isinstance(b, bool) or isinstance(a, bool):
        return type(a) is type(b)
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(map(same_types, a, b))
    if isinstance(b, dict):
        return isinstance(a, dict) and all(same_types(a[k], b[k]) for k in b if k in a)
    return True


def transports():
    if ARGS.transport == "polling":
        return ["polling"]
    if ARGS.transport == "websocket":
        return ["websocket"]
    return None  # polling first, then the upgrade


# -------------------------------------------------------------------------------------------------
# Async support: one event loop in a background thread, shared by every AsyncClient.

_LOOP = None


def loop():
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        t = threading.Thread(target=_LOOP.run_forever, name="asyncio", daemon=True)
        t.start()
    return _LOOP


# -------------------------------------------------------------------------------------------------
# Recording of events


class Recorder:
    """Queues event arguments per (namespace, event) so scenarios can wait for them in order."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.cond = threading.Condition()
        self.queues = {}

    def push(self, key, args):
        with self.cond:
            self.queues.setdefault(key, []).append(list(args))
            self.cond.notify_all()

    def next(self, key, timeout=None, what=None):
        """The next arguments for `key`; None if `timeout` (seconds) passes first. Without a
        timeout, waits until the scenario deadline and fails there."""
        end = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while True:
                q = self.queues.get(key)
                if q:
                    return q.pop(0)
                now = time.monotonic()
                limit = self.ctx.deadline if end is None else min(end, self.ctx.deadline)
                if now >= limit:
                    if end is not None and end <= self.ctx.deadline:
                        return None
                    raise ScenarioTimeout(f"timed out waiting for {what or key}")
                self.cond.wait(min(limit - now, 0.25))

    def pending(self, key):
        with self.cond:
            return len(self.queues.get(key, []))


RECORDED = ["auth", "message-back", "broadcast", "room-message", "got-ack"]
NAMESPACES = ["/", "/custom", "/nope"]


class WireLog(logging.Handler):
    """The Socket.IO events a client's engine received, in the order it received them.

    python-engineio's client has one reading thread per connection (`_read_loop_polling` /
    `_read_loop_websocket`) that decodes each packet and passes it to `_receive_packet`, which logs
    it (`Received packet MESSAGE data 2[...]`, INFO) before handing the message to the Socket.IO
    layer. Given to the client as its `engineio_logger` (a public option), this handler sees those
    records in wire order, whatever the threads that then run the event handlers do."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.events = []
        self.logger = logging.getLogger(f"sockio-testkit.wire.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record):
        if record.msg != "Received packet %s data %s" or len(record.args) != 2:
            return
        kind, data = record.args
        # A Socket.IO EVENT on `/`: `2[...]`.
        if kind != "MESSAGE" or not isinstance(data, str) or not data.startswith("2["):
            return
        try:
            self.events.append(json.loads(data[1:]))
        except ValueError:
            self.events.append(["undecodable", data[:80]])


class Delay:
    """Returned by an ack handler: wait `seconds` before answering `value`."""

    def __init__(self, seconds, value):
        self.seconds = seconds
        self.value = value


class Peer:
    """One python-socketio client (one Engine.IO connection), sync or async behind one facade."""

    def __init__(self, ctx, reconnection=False, wire=None):
        """`wire`: a WireLog that records what the engine receives."""
        self.ctx = ctx
        self.rec = Recorder(ctx)
        self.is_async = ARGS.client == "async"
        self.transport_at_error = None
        opts = dict(
            reconnection=reconnection,
            reconnection_delay=0.1,
            reconnection_delay_max=0.5,
            randomization_factor=0,
            handle_sigint=False,
        )
        if wire is not None:
            opts["engineio_logger"] = wire.logger
        if self.is_async:

            async def make():
                return socketio.AsyncClient(**opts)

            self.sio = self._run(make())
        else:
            self.sio = socketio.Client(**opts)
        for ns in NAMESPACES:
            self._record(ns)
        ctx.peers.append(self)

    # -- plumbing ---------------------------------------------------------------------------------

    def _run(self, coro, timeout=None):
        fut = asyncio.run_coroutine_threadsafe(coro, loop())
        remaining = self.ctx.remaining() if timeout is None else timeout
        try:
            return fut.result(timeout=max(remaining, 0.01))
        except TimeoutError:
            fut.cancel()
            raise ScenarioTimeout("timed out in an AsyncClient call")

    def _handler(self, fn):
        """Wraps a plain function as a handler of the right flavour."""
        if self.is_async:

            async def h(*args):
                r = fn(*args)
                if isinstance(r, Delay):
                    await asyncio.sleep(r.seconds)
                    r = r.value
                return r

        else:

            def h(*args):
                r = fn(*args)
                if isinstance(r, Delay):
                    time.sleep(r.seconds)
                    r = r.value
                return r

        return h

    def _record(self, ns):
        def on_connect():
            self.rec.push((ns, "connect"), [])

        def on_connect_error(*args):
            try:
                self.transport_at_error = self.sio.transport()
            except Exception:  # noqa: BLE001 - diagnostic only
                self.transport_at_error = None
            self.rec.push((ns, "connect_error"), args)

        label = f"client {len(self.ctx.peers) + 1} ({ns})"

        def on_disconnect(*args):
            self.ctx.disconnects.append(f"{label}: {args[0] if args else '?'}")
            self.rec.push((ns, "disconnect"), args)

        self.sio.on("connect", self._handler(on_connect), namespace=ns)
        self.sio.on("connect_error", self._handler(on_connect_error), namespace=ns)
        self.sio.on("disconnect", self._handler(on_disconnect), namespace=ns)
        for ev in RECORDED:

            def on_event(*args, _ev=ev):
                self.rec.push((ns, _ev), args)

            self.sio.on(ev, self._handler(on_event), namespace=ns)

    # -- API used by the scenarios ---------------------------------------------------------------

    def on(self, event, fn, ns="/"):
        """Registers `fn` for `event`; its return value is the acknowledgement (Delay allowed)."""
        self.sio.on(event, self._handler(fn), namespace=ns)

    def connect(self, namespaces=("/",), auth=None, expect_failure=False):
        kwargs = dict(
            auth=auth,
            transports=transports(),
            namespaces=list(namespaces),
            wait_timeout=max(min(self.ctx.remaining(), 5.0), 0.1),
        )
        self.ctx.step = f"connecting to {list(namespaces)}"
        try:
            if self.is_async:
                self._run(self.sio.connect(ARGS.url, **kwargs))
            else:
                self.sio.connect(ARGS.url, **kwargs)
        except socketio.exceptions.ConnectionError as e:
            if expect_failure:
                return str(e)
            fail(f"connect failed: {e}")
        if expect_failure:
            fail(f"connected to {list(namespaces)} although a failure was expected")
        return None

    def emit(self, event, *args, ns="/"):
        if self.is_async:
            self._run(self.sio.emit(event, data=tuple(args), namespace=ns))
        else:
            self.sio.emit(event, data=tuple(args), namespace=ns)

    def call(self, event, *args, ns="/"):
        """Emits with an ack and returns the ack's arguments (a list)."""
        key = (ns, f"ack:{event}:{time.monotonic_ns()}")

        def cb(*ack):
            self.rec.push(key, ack)

        if self.is_async:
            self._run(self.sio.emit(event, data=tuple(args), namespace=ns, callback=cb))
        else:
            self.sio.emit(event, data=tuple(args), namespace=ns, callback=cb)
        return self.rec.next(key, what=f"the ack of {event}")

    def next(self, event, ns="/", timeout=None):
        return self.rec.next((ns, event), timeout=timeout, what=f"{event} on {ns}")

    def sid(self, ns="/"):
        return self.sio.get_sid(ns)

    def namespaces(self):
        return dict(self.sio.namespaces)

    def transport(self):
        return self.sio.transport()

    def disconnect(self):
        if self.is_async:
            self._run(self.sio.disconnect(), timeout=5)
        else:
            self.sio.disconnect()

    def shutdown(self):
        if self.is_async:
            self._run(self.sio.shutdown(), timeout=5)
        else:
            self.sio.shutdown()

    @property
    def reason(self):
        return self.sio.reason


# -------------------------------------------------------------------------------------------------
# Scenario context


def timeout_ms(name):
    return ARGS.timeout_ms * LONG_SCENARIOS.get(name, 1)


class Ctx:
    def __init__(self, name):
        self.name = name
        self.deadline = time.monotonic() + timeout_ms(name) / 1000
        self.step = "start"
        self.peers = []
        self.notes = []
        self.disconnects = []  # every disconnect seen, for the failure report
        self.children = []  # child processes, killed at cleanup

    def remaining(self):
        return max(0.0, self.deadline - time.monotonic())

    def note(self, s):
        self.notes.append(s)

    def cleanup(self):
        for child in self.children:
            try:
                child.kill()
                child.wait(timeout=5)
            except Exception:  # noqa: BLE001 - already gone
                pass
        for p in self.peers:
            try:
                p.shutdown()
            except Exception:  # noqa: BLE001 - best effort
                pass


def expect_transport(ctx, peer):
    """Polling/websocket: the engine runs on that transport. Upgrade: it has upgraded to
    WebSocket (python-socketio upgrades during connect; waits until the deadline anyway)."""
    if ARGS.transport != "upgrade":
        t = peer.transport()
        if t != ARGS.transport:
            fail(f"engine transport is {t}, expected {ARGS.transport}")
        return
    ctx.step = "waiting for the upgrade to websocket"
    while peer.transport() != "websocket":
        if ctx.remaining() <= 0:
            fail(f"engine did not upgrade (transport {peer.transport()})")
        time.sleep(0.02)
    if "upgraded" not in ctx.notes:
        ctx.note("upgraded")


def disconnect_reason(ctx, asker, sid):
    """Polls `disconnect-reason` until the server knows it (bounded by the deadline)."""
    ctx.step = f"asking disconnect-reason for {sid}"
    while True:
        [reason] = asker.call("disconnect-reason", sid)
        if reason is not None:
            return reason
        if ctx.remaining() < 0.1:
            fail(f"disconnect-reason for {sid} stayed null")
        time.sleep(0.05)


def binary_blob():
    return bytes(range(256))


def under_limit_size():
    # `4` (Engine.IO message) + `2<ack id>` + the JSON array around the string.
    framing = 1 + 1 + 6 + len(json.dumps(["message-with-ack", ""], separators=(",", ":")))
    # Polling (EIO4): packets joined by \x1e; python-engineio may batch a pong into the POST.
    transport = 0 if ARGS.transport == "websocket" else 1 + 8
    safety = 32
    return MAX_HTTP_BUFFER - framing - transport - safety


# `payload-over-limit` sends a string whose Engine.IO packet, `4` + `2["message","<s>"]`, is
# OVER_LIMIT_BY bytes over the limit. That packet is the whole WebSocket message, and (Engine.IO 4
# joins polling packets with \x1e and adds nothing to a lone one) the whole POST body over
# polling; a pong batched into the same POST only adds to it.
OVER_LIMIT_BY = 1


def over_limit_packet(size):
    return 1 + len("2" + json.dumps(["message", ""], separators=(",", ":"))) + size


def over_limit_size():
    return MAX_HTTP_BUFFER + OVER_LIMIT_BY - over_limit_packet(0)


# -------------------------------------------------------------------------------------------------
# Scenarios


def s_connect_auth(ctx):
    p = Peer(ctx)
    p.connect(auth={"token": "abc"})
    assert_equal(p.next("auth"), [{"token": "abc"}], "auth event")
    expect_transport(ctx, p)
    ctx.note(f"sid={p.sid()}")


def s_connect_no_auth(ctx):
    p = Peer(ctx)
    p.connect()
    assert_equal(p.next("auth"), [{}], "auth event")
    expect_transport(ctx, p)


def s_connect_refused(ctx):
    p = Peer(ctx)
    err = p.connect(auth={"refuse": True}, expect_failure=True)
    ctx.step = "checking connect_error"
    args = p.next("connect_error")
    assert_equal(
        args,
        [{"message": "refused by server", "data": {"reason": "refuse was set"}}],
        "connect_error",
    )
    if ARGS.transport == "upgrade" and p.transport_at_error != "websocket":
        fail(f"engine had not upgraded when refused (transport {p.transport_at_error})")
    elif ARGS.transport != "upgrade" and p.transport_at_error != ARGS.transport:
        fail(f"engine transport was {p.transport_at_error}, expected {ARGS.transport}")
    ctx.note(f"connect raised: {err}")


def s_custom_namespace(ctx):
    p = Peer(ctx)
    p.connect(namespaces=["/custom"], auth={"token": "custom"})
    assert_equal(p.next("auth", ns="/custom"), [{"token": "custom"}], "auth event")
    if p.next("auth", ns="/", timeout=0) is not None:
        fail("an auth event arrived on / although only /custom was joined")
    expect_transport(ctx, p)
    ctx.note(f"sid={p.sid('/custom')}")


def s_invalid_namespace(ctx):
    p = Peer(ctx)
    err = p.connect(namespaces=["/nope"], expect_failure=True)
    args = p.next("connect_error", ns="/nope")
    assert_equal(args, [{"message": "Invalid namespace"}], "connect_error")
    if ARGS.transport == "upgrade" and p.transport_at_error != "websocket":
        fail(f"engine had not upgraded when refused (transport {p.transport_at_error})")
    ctx.note(f"connect raised: {err}")


def s_multi_namespace(ctx):
    p = Peer(ctx)
    p.connect(namespaces=["/", "/custom"], auth={"ns": "both"})
    assert_equal(p.next("auth", ns="/"), [{"ns": "both"}], "auth on /")
    assert_equal(p.next("auth", ns="/custom"), [{"ns": "both"}], "auth on /custom")
    nss = p.namespaces()
    if sorted(nss) != ["/", "/custom"]:
        fail(f"connected namespaces: {sorted(nss)}")
    if nss["/"] == nss["/custom"] or not all(nss.values()):
        fail(f"unexpected namespace sids {nss}")
    # one Client = one Engine.IO connection: both namespaces answer over it
    assert_equal(p.call("message-with-ack", "on root"), ["on root"], "ack on /")
    assert_equal(p.call("message-with-ack", "on custom", ns="/custom"), ["on custom"], "ack on /custom")
    expect_transport(ctx, p)
    ctx.note(f"engine={p.sio.eio.sid}")


EVENT_ARGS = [
    'héllo wörld ✓ 😀 日本語 \u2028 "quoted" \\ back',
    {
        "nested": {"arr": [1, 2.5, -3, True, False, None, "x", [[]]], "obj": {"ключ": "значение"}},
        "empty": {},
    },
    None,
]


def s_events_args(ctx):
    p = Peer(ctx)
    p.connect()
    p.emit("message", *EVENT_ARGS)
    ctx.step = "waiting for message-back"
    assert_equal(p.next("message-back"), EVENT_ARGS, "message-back")
    expect_transport(ctx, p)


def s_ack_client_to_server(ctx):
    p = Peer(ctx)
    p.connect()
    args = ["one", 2, {"three": [3, "three", None]}]
    ctx.step = "waiting for the ack"
    assert_equal(p.call("message-with-ack", *args), args, "ack")
    expect_transport(ctx, p)


def s_ack_server_to_client(ctx):
    p = Peer(ctx)
    asked = []

    def need_ack(*args):
        asked.append(list(args))
        return ("yes", 42)

    p.on("need-ack", need_ack)
    p.connect()
    p.emit("server-ack")
    ctx.step = "waiting for got-ack"
    got = p.next("got-ack")
    assert_equal(asked, [["please"]], "need-ack arguments")
    assert_equal(got, ["yes", 42], "got-ack")
    expect_transport(ctx, p)


def s_binary_both_ways(ctx):
    p = Peer(ctx)
    p.connect()
    args = [
        binary_blob(),
        {"name": "blob", "inner": {"data": bytes([1, 2, 3]), "list": [bytes([255, 0]), "text"]}},
    ]
    p.emit("message", *args)
    ctx.step = "waiting for message-back"
    back = p.next("message-back")
    if not isinstance(back[0], (bytes, bytearray)):
        fail(f"first argument came back as {show(back[0])}, not bytes")
    assert_equal(back, args, "message-back")
    expect_transport(ctx, p)


def s_binary_ack(ctx):
    p = Peer(ctx)
    p.connect()
    args = ["label", binary_blob(), {"nested": [b"sockio", {"deeper": bytes([0])}]}]
    ctx.step = "waiting for the ack"
    ack = p.call("message-with-ack", *args)
    if not isinstance(ack[1], (bytes, bytearray)):
        fail(f"binary came back as {show(ack[1])}")
    assert_equal(ack, args, "ack")
    expect_transport(ctx, p)


def s_rooms_broadcast(ctx):
    a, b, c = Peer(ctx), Peer(ctx), Peer(ctx)
    for x in (a, b, c):
        x.connect()
    ctx.step = "joining r1"
    assert_equal(a.call("join", "r1"), [True], "join ack (A)")
    assert_equal(b.call("join", "r1"), [True], "join ack (B)")
    assert_equal(a.call("rooms"), [sorted([a.sid(), "r1"])], "rooms of A")
    assert_equal(c.call("rooms"), [[c.sid()]], "rooms of C")

    ctx.step = "to-room r1"
    assert_equal(a.call("to-room", "r1", {"hello": "room"}), [True], "to-room ack")
    assert_equal(a.next("room-message"), [{"hello": "room"}], "room-message (A)")
    assert_equal(b.next("room-message"), [{"hello": "room"}], "room-message (B)")
    ctx.step = "checking that C gets no room-message"
    leak = c.next("room-message", timeout=0.5)
    if leak is not None:
        fail(f"C received room-message {show(leak)}")

    ctx.step = "broadcast"
    assert_equal(a.call("broadcast", ["all", 1]), [True], "broadcast ack")
    assert_equal(b.next("broadcast"), [["all", 1]], "broadcast (B)")
    assert_equal(c.next("broadcast"), [["all", 1]], "broadcast (C)")
    ctx.step = "checking that A gets no broadcast"
    echo = a.next("broadcast", timeout=0.5)
    if echo is not None:
        fail(f"A received its own broadcast {show(echo)}")

    ctx.step = "leave r1"
    assert_equal(b.call("leave", "r1"), [True], "leave ack (B)")
    assert_equal(b.call("rooms"), [[b.sid()]], "rooms of B after leave")
    for x in (a, b, c):
        expect_transport(ctx, x)


def s_server_call_timeout(ctx):
    p = Peer(ctx)
    state = {"answering": True, "questions": []}

    def server_call(*args):
        state["questions"].append(list(args))
        if state["answering"]:
            return ("answer", 42)
        # python-socketio always acknowledges an event that asks for it (with no arguments when
        # the handler returns None), so "not answering" is answering too late: after the
        # server's 300 ms. The server must ignore that late ack.
        return Delay(0.8, None)

    p.on("server-call", server_call)
    p.connect()
    ctx.step = "call-client 5000 (answered)"
    assert_equal(p.call("call-client", 5000), [{"answer": ["answer", 42]}], "answered call")
    state["answering"] = False
    ctx.step = "call-client 300 (not answered in time)"
    assert_equal(p.call("call-client", 300), [{"error": "timeout"}], "unanswered call")
    assert_equal(state["questions"], [["question"], ["question"]], "server-call arguments")
    # the connection survives the late ack
    ctx.step = "checking the connection after the late ack"
    state["answering"] = True
    assert_equal(p.call("call-client", 5000), [{"answer": ["answer", 42]}], "call after the late ack")
    expect_transport(ctx, p)


def s_server_disconnect(ctx):
    a, b = Peer(ctx), Peer(ctx)
    a.connect()
    b.connect()
    expect_transport(ctx, a)
    expect_transport(ctx, b)
    sid = a.sid()
    a.emit("disconnect-me")
    ctx.step = "waiting for A's disconnect"
    reason = a.next("disconnect")
    if reason != [a.reason.SERVER_DISCONNECT]:
        fail(f"A's disconnect reason: {show(reason)}")
    server_reason = disconnect_reason(ctx, b, sid)
    if server_reason != "server namespace disconnect":
        fail(f'server-side reason: expected "server namespace disconnect", got {show(server_reason)}')


def s_client_disconnect(ctx):
    a, b = Peer(ctx), Peer(ctx)
    a.connect()
    b.connect()
    expect_transport(ctx, a)
    expect_transport(ctx, b)
    sid = a.sid()
    a.disconnect()
    ctx.step = "waiting for A's disconnect"
    reason = a.next("disconnect")
    if reason != [a.reason.CLIENT_DISCONNECT]:
        fail(f"A's disconnect reason: {show(reason)}")
    server_reason = disconnect_reason(ctx, b, sid)
    # python-socketio sends the namespace DISCONNECT and the Engine.IO close packet back to back
    # (often in one POST or one TCP segment). The reference server dispatches Socket.IO packets on
    # process.nextTick, so the engine close usually wins and it records "transport close"; a
    # server that handles the packets in order records "client namespace disconnect". Both are
    # faithful to what the client sent; nothing else is.
    accepted = ("client namespace disconnect", "transport close")
    if server_reason not in accepted:
        fail(f"server-side reason: expected one of {accepted}, got {show(server_reason)}")
    ctx.note(f"server reason={server_reason}")


def s_reconnect_after_restart(ctx):
    p = Peer(ctx, reconnection=True)
    p.connect(auth={"token": "again"})
    assert_equal(p.next("auth"), [{"token": "again"}], "auth event")
    expect_transport(ctx, p)
    before = p.sid()
    sys.stdout.write("@@restart\n")
    sys.stdout.flush()
    ctx.step = "waiting for the disconnect caused by the restart"
    reason = p.next("disconnect")
    ctx.step = "waiting for the reconnection"
    p.next("connect")
    assert_equal(p.next("auth"), [{"token": "again"}], "auth after reconnection")
    expect_transport(ctx, p)
    ctx.note(f"disconnect reason={reason[0] if reason else None}, sid {before} -> {p.sid()}")


def s_messages_in_order(ctx):
    wire = WireLog()
    p = Peer(ctx, wire=wire)
    got = []
    cv = threading.Condition()

    def on_back(i):
        with cv:
            got.append(i)
            if len(got) % 1000 == 0:
                ctx.step = f"waiting for echoes ({len(got)} of {IN_ORDER_COUNT} so far)"
            cv.notify_all()

    p.on("message-back", on_back)
    p.connect()
    assert_equal(p.next("auth"), [{}], "auth event")
    # At most IN_ORDER_WINDOW unanswered, so the emitting thread does not starve the client's
    # heartbeat. python-engineio's polling client also refuses a response of more than 16 packets
    # (`Payload.max_decode_packets`) and drops the connection, and a server may batch every queued
    # echo into one response: over polling, keep at most 12 unanswered.
    window = 12 if ARGS.transport == "polling" else IN_ORDER_WINDOW
    t0 = time.monotonic()
    sent = 0
    ctx.step = f"waiting for echoes (none of {IN_ORDER_COUNT} so far)"
    while True:
        with cv:
            received = len(got)
        if received == IN_ORDER_COUNT:
            break
        while sent < IN_ORDER_COUNT and sent - received < window:
            p.emit("message", sent)
            sent += 1
        with cv:
            cv.wait_for(lambda: len(got) > received, timeout=0.05)
        if p.rec.pending(("/", "disconnect")):
            fail(f"disconnected after {len(got)} echoes")
        if ctx.remaining() <= 0:
            raise ScenarioTimeout(f"only {len(got)} of {IN_ORDER_COUNT} echoes arrived")
    if ARGS.client == "sync":
        # python-engineio's threaded `Client` runs the handlers of every received message in a
        # thread of its own (`_trigger_event('message', ..., run_async=True)`), so the order in
        # which the handlers run is the threads' race, not the order of arrival. Two checks
        # instead: the engine's reading thread received 0..9999 in order (WireLog), and each
        # echo reached the handler exactly once. (`AsyncClient` runs them as tasks, which start
        # in order, so its handlers' order is checked directly below.)
        echoes = [e for e in wire.events if e and e[0] == "message-back"]
        if len(echoes) != IN_ORDER_COUNT:
            fail(
                f"the engine logged {len(echoes)} message-back packets, expected {IN_ORDER_COUNT} "
                f"(first records: {show(wire.events[:3])})"
            )
        for i, e in enumerate(echoes):
            if e != ["message-back", i]:
                fail(f"echo #{i} received was {show(e)}, expected {i} (order or content broken)")
        if sorted(got) != list(range(IN_ORDER_COUNT)):
            missing = sorted(set(range(IN_ORDER_COUNT)) - set(got))[:5]
            fail(f"echoes are not 0..{IN_ORDER_COUNT - 1} exactly once (missing e.g. {missing})")
        swapped = sum(1 for a, b in zip(got, got[1:]) if a > b)
        what = f"received in order (handlers ran {swapped} out of turn)"
    else:
        for i, v in enumerate(got):
            if v != i:
                fail(f"echo #{i} was {show(v)}, expected {i} (order or content broken)")
        what = "in order"
    expect_transport(ctx, p)
    ms = int((time.monotonic() - t0) * 1000)
    ctx.note(f"{IN_ORDER_COUNT} {what} in {ms} ms, at most {window} unanswered")


def spawn_child(ctx):
    """Starts this script as a child client (same flavour, URL and transport) that connects to
    `/`, reports its socket id and the heartbeat values of its handshake, and idles until killed.
    Returns (process, sid, ping interval ms, ping timeout ms)."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", "--client", ARGS.client,
         "--url", ARGS.url, "--transport", ARGS.transport],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx.children.append(proc)
    ctx.step = "waiting for the child client to connect"
    first = {}

    def read():
        for line in proc.stdout:
            if line.startswith("child "):
                first["line"] = line
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(max(ctx.remaining(), 0.1))
    if "line" not in first:
        proc.kill()
        fail(f"the child client did not connect: {proc.stderr.read()[-2000:] if proc.poll() is not None else 'still starting'}")
    _, sid, interval, timeout = first["line"].split()
    return proc, sid, float(interval), float(timeout)


def child_main():
    """The body of a child client (see spawn_child)."""
    ctx = Ctx("child")
    p = Peer(ctx)
    p.connect()
    assert_equal(p.next("auth"), [{}], "auth event")
    expect_transport(ctx, p)
    eio = p.sio.eio
    sys.stdout.write(f"child {p.sid()} {int(eio.ping_interval * 1000)} {int(eio.ping_timeout * 1000)}\n")
    sys.stdout.flush()
    threading.Event().wait()  # idle until killed


def vanishing_client(ctx, sig):
    """A child client vanishes (`sig`): SIGKILL ends the process (its kernel closes the TCP
    connections), SIGSTOP freezes it (connections stay open, nothing answers). The server must
    notice within ping interval + ping timeout (+ slack), as the observer sees through
    `disconnect-reason`. Returns the server's reason."""
    observer = Peer(ctx)
    observer.connect()
    proc, sid, interval, timeout = spawn_child(ctx)
    if not (interval > 0 and timeout > 0):
        fail(f"child reported no heartbeat values ({interval}, {timeout})")
    t0 = time.monotonic()
    proc.send_signal(sig)
    reason = disconnect_reason(ctx, observer, sid)
    elapsed = (time.monotonic() - t0) * 1000
    bound = interval + timeout + HEARTBEAT_SLACK_MS
    if elapsed > bound:
        fail(
            f"the server noticed after {int(elapsed)} ms ({reason}), over {int(bound)} ms = ping "
            f"interval {int(interval)} + ping timeout {int(timeout)} + slack {HEARTBEAT_SLACK_MS}"
        )
    ctx.note(f"reason={reason} after {int(elapsed)} ms (bound {int(bound)} ms)")
    return reason


def s_client_killed(ctx):
    reason = vanishing_client(ctx, signal.SIGKILL)
    # The kernel closes a killed process's connections: the server may see that at once
    # ("transport close" / "transport error") or, when nothing of the connection was held open,
    # only through the heartbeat ("ping timeout").
    accepted = ("transport close", "transport error", "ping timeout")
    if reason not in accepted:
        fail(f"server-side reason: expected one of {accepted}, got {show(reason)}")


def s_client_frozen(ctx):
    reason = vanishing_client(ctx, signal.SIGSTOP)
    # A frozen process keeps its connections open: only the heartbeat can tell.
    if reason != "ping timeout":
        fail(f'server-side reason: expected "ping timeout", got {show(reason)}')


def s_payload_under_limit(ctx):
    p = Peer(ctx)
    p.connect()
    expect_transport(ctx, p)
    size = under_limit_size()
    big = "x" * size
    ctx.step = f"waiting for the ack of {size} bytes"
    ack = p.call("message-with-ack", big)
    if len(ack) != 1 or ack[0] != big:
        fail(f"ack did not echo the {size}-byte string")
    if "/" not in p.namespaces():
        fail("disconnected after the payload")
    ctx.note(f"size={size}")


def s_payload_over_limit(ctx):
    p = Peer(ctx)
    p.connect()
    expect_transport(ctx, p)
    size = over_limit_size()
    packet = over_limit_packet(size)
    t0 = time.monotonic()
    p.emit("message", "y" * size)
    ctx.step = f"waiting for the disconnect after the oversized message ({size} bytes)"
    got = p.next("disconnect", timeout=5)
    if got is None:
        fail(f"still connected 5 s after sending a {size}-byte string (packet {packet} bytes)")
    # python-engineio reports a lost or refused transport as "transport error" and a close
    # packet from the server as "server disconnect"; it has no separate "transport close".
    accepted = (p.reason.TRANSPORT_ERROR, p.reason.SERVER_DISCONNECT)
    if got[0] not in accepted:
        fail(f"disconnect reason: expected one of {accepted}, got {show(got)}")
    ctx.note(
        f"size={size} (packet {packet} bytes), reason={got[0]} after "
        f"{int((time.monotonic() - t0) * 1000)} ms"
    )


SCENARIOS = {
    "connect-auth": s_connect_auth,
    "connect-no-auth": s_connect_no_auth,
    "connect-refused": s_connect_refused,
    "custom-namespace": s_custom_namespace,
    "invalid-namespace": s_invalid_namespace,
    "multi-namespace": s_multi_namespace,
    "events-args": s_events_args,
    "ack-client-to-server": s_ack_client_to_server,
    "ack-server-to-client": s_ack_server_to_client,
    "binary-both-ways": s_binary_both_ways,
    "binary-ack": s_binary_ack,
    "rooms-broadcast": s_rooms_broadcast,
    "server-call-timeout": s_server_call_timeout,
    "server-disconnect": s_server_disconnect,
    "client-disconnect": s_client_disconnect,
    "reconnect-after-restart": s_reconnect_after_restart,
    "messages-in-order": s_messages_in_order,
    "client-killed": s_client_killed,
    "client-frozen": s_client_frozen,
    "payload-under-limit": s_payload_under_limit,
    "payload-over-limit": s_payload_over_limit,
}


# -------------------------------------------------------------------------------------------------
# Runner


def run_one(name):
    fn = SCENARIOS.get(name)
    if fn is None:
        return {"scenario": name, "ok": False, "detail": f"unknown scenario (client {ARGS.client})"}
    ctx = Ctx(name)
    outcome = {}

    def body():
        try:
            fn(ctx)
            outcome["ok"] = True
        except ScenarioError as e:
            outcome["error"] = str(e)
        except Exception:  # noqa: BLE001 - reported as the scenario's failure
            outcome["error"] = traceback.format_exc(limit=6)

    worker = threading.Thread(target=body, name=name, daemon=True)
    worker.start()
    worker.join(timeout_ms(name) / 1000 + 0.5)
    seen = f"; disconnects seen: {', '.join(ctx.disconnects)}" if ctx.disconnects else ""
    if worker.is_alive():
        result = {
            "scenario": name,
            "ok": False,
            "detail": f"timed out after {timeout_ms(name)} ms (step: {ctx.step}){seen}",
        }
    elif outcome.get("ok"):
        result = {"scenario": name, "ok": True, "detail": "; ".join(ctx.notes)}
    else:
        detail = f"{outcome.get('error')} (step: {ctx.step}){seen}"
        result = {"scenario": name, "ok": False, "detail": detail}
    # bounded cleanup: never let a stuck client hold up the next scenario
    cleaner = threading.Thread(target=ctx.cleanup, daemon=True)
    cleaner.start()
    cleaner.join(5)
    return result


def main():
    all_ok = True
    for name in ARGS.scenarios:
        r = run_one(name)
        all_ok = all_ok and r["ok"]
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # background threads of the clients must not keep the process alive
    os._exit(0 if all_ok else 1)


if __name__ == "__main__":
    if ARGS.child:
        child_main()
    else:
        main()
