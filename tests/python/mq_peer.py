"""python-socketio on the other end of a sockio cluster test (tests/cluster.rs).

  mq_peer.py server --url URL --channel C --port N
      an AsyncServer (aiohttp) with an AsyncRedisManager / AsyncAioPikaManager on the channel;
      prints "listening <port>" when ready. On "relay" it broadcasts "relayed" with the same
      argument through the manager; on "call-sid" [sid, event] it calls that client (on any
      server) and acks with the answer.
  mq_peer.py emit --url URL --channel C --event E --data JSON [--room R] [--binary]
      a write-only RedisManager / KombuManager emits once and exits (--binary adds bytes 1,2,255
      as a second argument).
"""

import argparse
import asyncio
import json
import sys

import socketio


def manager_for(url, channel, write_only=False, asyncio_mode=False):
    if url.startswith("redis://"):
        cls = socketio.AsyncRedisManager if asyncio_mode else socketio.RedisManager
    elif url.startswith("amqp://"):
        cls = socketio.AsyncAioPikaManager if asyncio_mode else socketio.KombuManager
    else:
        raise SystemExit(f"unsupported broker URL {url}")
    return cls(url, channel=channel, write_only=write_only)


async def serve(args):
    from aiohttp import web

    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager_for(args.url, args.channel, asyncio_mode=True),
        cors_allowed_origins="*",
    )

    @sio.on("relay")
    async def relay(sid, data):
        await sio.emit("relayed", data)
        return "relayed"

    @sio.on("call-sid")
    async def call_sid(sid, data):
        target, event = data
        try:
            return await sio.call(event, "from-python", to=target, timeout=10)
        except Exception as exc:  # reported to the test through the ack
            return f"error: {exc!r}"

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


def emit(args):
    manager = manager_for(args.url, args.channel, write_only=True)
    data = json.loads(args.data)
    payload = (data, bytes([1, 2, 255])) if args.binary else data
    manager.emit(args.event, payload, namespace="/", room=args.room)
    print("emitted", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["server", "emit"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--event")
    parser.add_argument("--data", default="null")
    parser.add_argument("--room")
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args()
    if args.mode == "server":
        asyncio.run(serve(args))
    else:
        emit(args)


if __name__ == "__main__":
    sys.exit(main())
