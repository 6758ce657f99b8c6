#!/usr/bin/env node
// Smoke test of the chat demo with the official Node.js client (socket.io-client 4.x).
//
//   cargo run --example chat &
//   node examples/chat/smoke-test.js http://127.0.0.1:3000
//
// socket.io-client comes from NODE_PATH if set, else from testkit/clients/node_modules.
//
// Prints one line per check and exits non-zero at the first failure. Names carry a random tag, so
// the test can run against a server that people are using.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

const support = require("./test-support");
const { io } = support;

const url = process.argv[2] || "http://127.0.0.1:3000";
const tag = crypto.randomInt(1000, 9999);
const ROOM = `smoke-${tag}`;
const TIMEOUT_MS = 5000;
const sockets = [];

// Connects as `name`; resolves with the socket and its `welcome` event, rejects on refusal.
function connect(name, options = {}) {
  return new Promise((resolve, reject) => {
    // forceNew: one Engine.IO connection per user, like separate browser tabs.
    const socket = io(url, { auth: { name }, forceNew: true, reconnection: false, ...options });
    sockets.push(socket);
    socket.once("welcome", (welcome) => resolve({ socket, welcome }));
    socket.once("connect_error", reject);
  });
}

// Resolves with the next `event` on `socket` whose data satisfies `match`.
const next = (socket, event, match = () => true) =>
  support.next(socket, event, match, TIMEOUT_MS);

// Emits with an acknowledgement; the chat's acks are Rust `Result`s: {Ok: value} or {Err: why}.
function request(socket, event, data) {
  return socket.timeout(TIMEOUT_MS).emitWithAck(event, data);
}

async function refused(name) {
  try {
    await connect(name);
  } catch (err) {
    return err;
  }
  throw new Error(`the name ${JSON.stringify(name)} was accepted`);
}

// A small "PNG": the signature is what the server checks; the rest is random bytes.
function fakePng(size) {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, crypto.randomBytes(size - signature.length)]);
}

const checks = [];
function check(title, run) {
  checks.push({ title, run });
}

let alice, bob, carol;
const aliceName = `alice${tag}`;
const bobName = `bob${tag}`;

check("alice connects over WebSocket and is welcomed in the lobby", async () => {
  alice = await connect(aliceName, { transports: ["websocket"] });
  assert.equal(alice.welcome.name, aliceName);
  assert.equal(alice.welcome.room, "lobby");
  assert.ok(alice.welcome.users.includes(aliceName));
});

check("bob connects (polling, then upgrade); alice sees him join", async () => {
  const joined = next(alice.socket, "user joined", (p) => p.name === bobName && p.room === "lobby");
  bob = await connect(bobName);
  const presence = await joined;
  assert.ok(presence.users.includes(aliceName) && presence.users.includes(bobName));
  assert.ok(bob.welcome.users.includes(aliceName));
});

check("a name already in use is refused with data (case-insensitive)", async () => {
  const err = await refused(aliceName.toUpperCase());
  assert.equal(err.message, "name taken");
  assert.match(err.data.detail, /already/);
  assert.ok(err.data.suggestion, "a suggestion is offered");
});

check("a page reconnecting with its own secret takes its name back from its old socket", async () => {
  const daveName = `dave${tag}`;
  const resume = crypto.randomBytes(16).toString("hex");
  const first = await connect(daveName, { auth: { name: daveName, resume } });
  // Another page (another secret) cannot take it...
  const other = await connect(daveName, { auth: { name: daveName, resume: "not-the-same" } })
    .then(() => null, (err) => err);
  assert.equal(other?.message, "name taken");
  // ...the same page, whose old connection the server still holds, can: the old one is let go.
  const gone = next(first.socket, "disconnect", () => true);
  const left = [];
  const leaving = (p) => p.name === daveName && left.push(p);
  alice.socket.on("user left", leaving);
  const second = await connect(daveName, { auth: { name: daveName, resume } });
  assert.equal(second.welcome.name, daveName);
  assert.equal(second.welcome.users.filter((u) => u === daveName).length, 1, "listed once");
  assert.equal(await gone, "io server disconnect");
  // The others see no "dave left" for the replaced connection: a marker emitted after it shows
  // that nothing came before it.
  await request(second.socket, "join", `${ROOM}-marker`);
  alice.socket.off("user left", leaving);
  assert.deepEqual(left, []);
  const reallyLeft = next(alice.socket, "user left", (p) => p.name === daveName && p.room === "lobby");
  second.socket.disconnect();
  assert.ok(!(await reallyLeft).users.includes(daveName));
});

check("empty and too long names are refused", async () => {
  assert.equal((await refused("   ")).message, "invalid name");
  assert.equal((await refused("x".repeat(21))).message, "invalid name");
  assert.equal((await refused(undefined)).message, "invalid name");
});

check("names with invisible characters, which could pass for another's, are refused", async () => {
  assert.equal((await refused(`${aliceName}\u200b`)).message, "invalid name");
  assert.equal((await refused(`\u202e${aliceName}`)).message, "invalid name");
  // A variation selector (emoji need them) shows nothing after a letter: the name is taken.
  assert.equal((await refused(`${aliceName}\ufe0f`)).message, "name taken");
});

check("both join a room; the acks carry the room's users", async () => {
  const a = await request(alice.socket, "join", ROOM);
  assert.deepEqual(a, { Ok: { room: ROOM, users: [aliceName] } });
  const joined = next(alice.socket, "user joined", (p) => p.room === ROOM && p.name === bobName);
  const b = await request(bob.socket, "join", ROOM.toUpperCase()); // room names are lowercased
  assert.equal(b.Ok.room, ROOM);
  assert.deepEqual(b.Ok.users.sort(), [aliceName, bobName].sort());
  assert.deepEqual((await joined).users.sort(), [aliceName, bobName].sort());
});

check("a burst of joins cannot take a user past 10 rooms", async () => {
  // Sent at once, so that the server handles them side by side.
  const rooms = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
  const acks = await Promise.all(rooms.map((room) => request(alice.socket, "join", room)));
  const joined = acks.filter((ack) => "Ok" in ack).length;
  // Alice is in the lobby and ROOM already: 8 more at most.
  assert.equal(joined, 8, JSON.stringify(acks));
  for (const room of rooms) await request(alice.socket, "leave", room);
});

check("invalid room names are refused", async () => {
  assert.ok("Err" in (await request(alice.socket, "join", "no spaces")));
  assert.ok("Err" in (await request(alice.socket, "join", `chat:${alice.socket.id}`)));
});

check("alice's message is acked and reaches bob in the room", async () => {
  const received = next(bob.socket, "message", (m) => m.room === ROOM);
  const ack = await request(alice.socket, "message", { room: ROOM, text: "  hello bob  " });
  assert.equal(typeof ack.Ok.at, "number");
  const message = await received;
  assert.deepEqual(message, { room: ROOM, from: aliceName, text: "hello bob", at: ack.Ok.at });
});

check("messages to a room one is not in are refused", async () => {
  const ack = await request(alice.socket, "message", { room: "elsewhere", text: "hi" });
  assert.match(ack.Err, /not in/);
});

check("bob's typing indicator reaches alice", async () => {
  const typing = next(alice.socket, "typing", (t) => t.room === ROOM);
  bob.socket.emit("typing", ROOM);
  assert.deepEqual(await typing, { room: ROOM, name: bobName });
});

check("bob's image (binary) reaches alice byte for byte", async () => {
  const png = fakePng(200 * 1024);
  const received = next(alice.socket, "image", (i) => i.room === ROOM);
  const ack = await request(bob.socket, "image", { room: ROOM, data: png });
  assert.ok("Ok" in ack, JSON.stringify(ack));
  const image = await received;
  assert.equal(image.from, bobName);
  assert.equal(image.mime, "image/png");
  assert.ok(Buffer.isBuffer(image.data), "the image arrives as binary");
  assert.ok(png.equals(image.data), "identical bytes");
});

check("an image sent over HTTP long-polling arrives intact too", async () => {
  carol = await connect(`carol${tag}`, { transports: ["polling"] });
  assert.ok("Ok" in (await request(carol.socket, "join", ROOM)));
  const png = fakePng(300 * 1024);
  const received = next(alice.socket, "image", (i) => i.from === `carol${tag}`);
  assert.ok("Ok" in (await request(carol.socket, "image", { room: ROOM, data: png })));
  assert.ok(png.equals((await received).data));
});

check("carol's connection drops; alice sees her leave with reason \"transport close\"", async () => {
  const left = next(alice.socket, "user left", (p) => p.room === ROOM && p.name === `carol${tag}`);
  carol.socket.io.engine.close(); // like a closed tab: the connection ends, no goodbye packet
  assert.equal((await left).reason, "transport close");
});

check("images over 512 KB and non-images are refused", async () => {
  const big = await request(bob.socket, "image", { room: ROOM, data: fakePng(512 * 1024 + 1) });
  assert.match(big.Err, /512 KB/);
  const text = await request(bob.socket, "image", { room: ROOM, data: Buffer.from("<svg></svg>") });
  assert.match(text.Err, /PNG/);
});

check("bob leaves the room; alice sees it with the reason", async () => {
  const left = next(alice.socket, "user left", (p) => p.room === ROOM && p.name === bobName);
  assert.deepEqual(await request(bob.socket, "leave", ROOM), { Ok: null });
  const presence = await left;
  assert.equal(presence.reason, "left the room");
  assert.ok(!presence.users.includes(bobName));
  assert.ok("Err" in (await request(bob.socket, "leave", "lobby")), "the lobby cannot be left");
});

check("bob disconnects; alice sees him leave the lobby with the disconnect reason", async () => {
  const left = next(alice.socket, "user left", (p) => p.room === "lobby" && p.name === bobName);
  bob.socket.disconnect();
  const presence = await left;
  assert.equal(presence.reason, "client namespace disconnect");
  assert.ok(!presence.users.includes(bobName));
});

check("bob's name is free again", async () => {
  const again = await connect(bobName);
  assert.equal(again.welcome.name, bobName);
  again.socket.disconnect();
});

(async () => {
  console.log(`chat smoke test against ${url} (room ${ROOM})`);
  let failed = false;
  for (const { title, run } of checks) {
    try {
      await run();
      console.log(`ok   ${title}`);
    } catch (error) {
      console.log(`FAIL ${title}\n     ${error && error.stack ? error.stack : error}`);
      failed = true;
      break;
    }
  }
  for (const socket of sockets) socket.disconnect();
  console.log(failed ? "FAILED" : `all ${checks.length} checks passed`);
  process.exit(failed ? 1 : 0);
})();
