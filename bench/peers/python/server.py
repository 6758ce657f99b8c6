"""The bench app on python-socketio (AsyncServer) on uvicorn, default settings.

echo, broadcast, join, to-room on "/", served at /socket.io/. Usage: python server.py PORT
"""

import sys

import socketio
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi")
app = socketio.ASGIApp(sio, socketio_path="socket.io")


@sio.on("echo")
async def echo(sid, *args):
    return args


@sio.on("broadcast")
async def broadcast(sid, *args):
    await sio.emit("bcast", args if len(args) != 1 else args[0])
    return None


@sio.on("join")
async def join(sid, room):
    await sio.enter_room(sid, room)
    return True


@sio.on("to-room")
async def to_room(sid, room, *args):
    await sio.emit("bcast", args if len(args) != 1 else args[0], room=room)
    return None


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", workers=1)
