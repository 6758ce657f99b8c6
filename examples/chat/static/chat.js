// The sockio chat page: plain browser JavaScript, no build step. `io` comes from socket.io.min.js,
// the official client. The server side is examples/chat.rs; its header lists every event.
"use strict";

const LOBBY = "lobby";
const MAX_IMAGE_BYTES = 512 * 1024; // the server checks too; this only spares a useless upload
const ACK_TIMEOUT_MS = 10000; // a message without an answer by then is shown as failed
const TYPING_SEND_EVERY_MS = 1000; // at most one "typing" emit per second while typing...
const TYPING_SHOW_MS = 3000; // ...and each one shows "X is typing…" for 3 s
const MAX_LINES = 500; // per room: older lines (and the images they hold) are let go

// Connect only once the user has picked a name (it goes in `auth`, checked by the server).
// Same origin as the page, so no URL is needed.
const socket = io({ autoConnect: false });
// Made once per page and sent with each connection: when the network drops without the server
// noticing, the page's automatic reconnection takes its name back from its own old connection
// (which the server would otherwise keep until its heartbeat times out) instead of being told
// the name is taken. `getRandomValues`, unlike `randomUUID`, works on a plain-HTTP LAN address.
const RESUME = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
  b.toString(16).padStart(2, "0"),
).join("");

const $ = (id) => document.getElementById(id);

// Everything the page knows. The server is the authority; this mirrors what it told us.
const state = {
  name: null,
  current: LOBBY,
  rooms: new Map(), // room name → { users, log (an <ol>), unread, typing: Map(name → timer) }
  lastTypingSent: 0,
  // While the client reconnects, what is sent waits here until the new connection is back in the
  // rooms the page shows (see "welcome"): the client would send it on the new socket before the
  // rooms are joined again, and the server would refuse it ("You are not in ..."). `null` when
  // nothing needs to wait.
  rejoin: null, // { promise, resolve, reject }
  // Counts disconnections, so that a rejoin finished for an earlier connection (one that dropped
  // again while its rooms were being joined) does not let waiting messages out early.
  connection: 0,
  // Counts logins, so that what one login started (reading an image, a join or leave answered
  // late) does not go out, or show its error, under the next.
  login: 0,
};

// Settles once what the user sends may go out: at once, or after the rooms are joined again
// (rejected when the login ends first).
function afterRejoin() {
  return state.rejoin ? state.rejoin.promise : Promise.resolve();
}

// Messages sent from now on wait until the rooms are joined again after a reconnection. (Once
// per wait: a second disconnect before the rooms are back keeps the wait already there.)
function awaitRejoin() {
  if (state.rejoin) return;
  const rejoin = {};
  rejoin.promise = new Promise((resolve, reject) => {
    rejoin.resolve = resolve;
    rejoin.reject = reject;
  });
  // A message that fails this way says so on its own line; nobody else awaits the promise.
  rejoin.promise.catch(() => {});
  state.rejoin = rejoin;
}

// The rooms are back for `connection`: what waited goes out, unless that connection dropped since.
function markRejoined(connection) {
  if (connection !== state.connection || !state.rejoin) return;
  state.rejoin.resolve();
  state.rejoin = null;
}

// This login is over (signed out, or put out by the server): what waited for it fails instead of
// going out later on a connection that may carry someone else's name.
function abandonRejoin(why) {
  if (!state.rejoin) return;
  state.rejoin.reject(new Error(why));
  state.rejoin = null;
}

// ----- rooms ------------------------------------------------------------------------------------

function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    const log = document.createElement("ol");
    log.className = "log";
    log.hidden = name !== state.current;
    $("logs").append(log);
    r = { users: [], log, unread: 0, typing: new Map() };
    state.rooms.set(name, r);
  }
  return r;
}

function switchTo(name) {
  state.current = name;
  const r = room(name);
  r.unread = 0;
  for (const [other, { log }] of state.rooms) log.hidden = other !== name;
  $("room-title").textContent = "#" + name;
  state.lastTypingSent = 0;
  renderRooms();
  renderUsers();
  renderTyping();
  r.log.lastElementChild?.scrollIntoView({ block: "end" });
  $("text").focus();
}

function forgetRoom(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  for (const img of r.log.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  r.log.remove();
  for (const timer of r.typing.values()) clearTimeout(timer);
  state.rooms.delete(name);
}

function renderRooms() {
  const list = $("room-list");
  list.replaceChildren();
  for (const [name, r] of state.rooms) {
    const li = document.createElement("li");
    li.classList.toggle("current", name === state.current);
    const open = document.createElement("button");
    open.type = "button";
    open.className = "room";
    open.textContent = "#" + name;
    open.onclick = () => switchTo(name);
    li.append(open);
    if (r.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = r.unread;
      li.append(badge);
    }
    if (name !== LOBBY) {
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "leave";
      leave.title = "Leave #" + name;
      leave.textContent = "×";
      leave.onclick = () => leaveRoom(name);
      li.append(leave);
    }
    list.append(li);
  }
}

function renderUsers() {
  const list = $("user-list");
  list.replaceChildren();
  for (const name of room(state.current).users) {
    const li = document.createElement("li");
    li.textContent = name === state.name ? `${name} (you)` : name;
    list.append(li);
  }
}

function renderTyping() {
  const names = [...room(state.current).typing.keys()];
  $("typing").textContent =
    names.length === 0 ? "" :
    names.length === 1 ? `${names[0]} is typing…` :
    `${names.join(", ")} are typing…`;
}

// ----- the message log ----------------------------------------------------------------------------

function time(at) {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Adds a line to a room's log and returns it. User content always goes in with textContent, never
// innerHTML, so a message cannot inject markup into other people's pages.
function addLine(roomName, { from, text, imageUrl, at, own = false, notice = false }) {
  const r = room(roomName);
  const li = document.createElement("li");
  li.classList.toggle("own", own);
  li.classList.toggle("notice", notice);
  li.classList.toggle("image", Boolean(imageUrl));

  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${time(at ?? Date.now())}${from ? " " + from : ""}`;
  li.append(meta);

  if (text !== undefined) {
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.append(body);
  }
  if (imageUrl) {
    const img = document.createElement("img");
    img.src = imageUrl;
    img.alt = `image from ${from}`;
    li.append(img);
  }

  // Only scroll when the reader is at the bottom already, so reading history is not disturbed.
  const box = $("logs");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  r.log.append(li);
  while (r.log.children.length > MAX_LINES) removeLine(r.log.firstElementChild);
  if (roomName === state.current) {
    if (atBottom || own) li.scrollIntoView({ block: "end" });
  } else if (!notice) {
    r.unread += 1;
    renderRooms();
  }
  return li;
}

// A line's image is a Blob URL, which keeps the image in memory until revoked.
function removeLine(li) {
  for (const img of li.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  li.remove();
}

function notice(roomName, text) {
  return addLine(roomName, { text, notice: true });
}

// Emits `event` with an acknowledgement and resolves with the server's answer. The server's
// handlers return a Rust `Result`, which arrives as {Ok: value} or {Err: "why"}; this turns it into
// a value or a thrown Error, so callers can use try/catch.
async function request(event, data) {
  let reply;
  try {
    reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data);
  } catch {
    throw new Error("no answer from the server");
  }
  if (reply && "Ok" in reply) return reply.Ok;
  // Anything but {Ok} or {Err} is not this server's answer. (Data sockio cannot read as the
  // handler's type gets no acknowledgement at all: the timeout above.)
  throw new Error(reply?.Err ?? "the server could not read the request");
}

// Own messages appear at once, marked pending; the server's acknowledgement settles them.
async function deliver(li, event, data) {
  li.classList.add("pending");
  const status = document.createElement("span");
  status.className = "delivery";
  status.textContent = "sending…";
  li.append(status);
  try {
    await afterRejoin();
    const { at } = await request(event, data);
    status.textContent = "✓";
    status.title = "delivered at " + time(at);
  } catch (error) {
    li.classList.add("failed");
    status.textContent = "not delivered: " + error.message;
  } finally {
    li.classList.remove("pending");
  }
}

// ----- actions ----------------------------------------------------------------------------------

function sendMessage(text) {
  const roomName = state.current;
  const li = addLine(roomName, { from: state.name, text, own: true });
  deliver(li, "message", { room: roomName, text });
}

async function sendImage(file) {
  const roomName = state.current;
  if (file.size > MAX_IMAGE_BYTES) {
    notice(roomName, `${file.name} is ${Math.ceil(file.size / 1024)} KB; images are at most 512 KB.`);
    return;
  }
  // An ArrayBuffer anywhere in the data makes the client send it as a binary attachment
  // (no base64); the server receives it in a `Bytes` field.
  const login = state.login;
  const data = await file.arrayBuffer();
  if (login !== state.login) return; // signed out meanwhile: not sent under the next name
  const li = addLine(roomName, { from: state.name, imageUrl: URL.createObjectURL(file), own: true });
  deliver(li, "image", { room: roomName, data });
}

// Asks the server to put us in a room; `show` switches to it once the server agrees.
// `afterOutage`: a join the user asked for waits, as messages do, while the rooms are joined
// again after a reconnection (the rejoin itself does not).
async function joinRoom(name, { show, afterOutage = false }) {
  const login = state.login;
  try {
    if (afterOutage) await afterRejoin();
    const joined = await request("join", name); // `joined.room` is the server's spelling
    $("join-error").textContent = "";
    room(joined.room).users = joined.users;
    if (show) switchTo(joined.room);
    else renderRooms();
  } catch (error) {
    if (login === state.login) $("join-error").textContent = `Cannot join "${name}": ${error.message}`;
  }
}

async function leaveRoom(name) {
  const login = state.login;
  try {
    await afterRejoin();
    await request("leave", name);
    forgetRoom(name);
    switchTo(LOBBY);
  } catch (error) {
    if (login === state.login) $("join-error").textContent = `Cannot leave #${name}: ${error.message}`;
  }
}

function showLogin(error = "") {
  $("login-view").hidden = false;
  $("chat-view").hidden = true;
  $("sign-out").hidden = true;
  $("me").textContent = "";
  $("login-error").textContent = error;
  $("name").focus();
}

// ----- form wiring --------------------------------------------------------------------------------

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  // A fresh start: rooms of an earlier session are not rejoined.
  for (const name of [...state.rooms.keys()]) forgetRoom(name);
  state.current = LOBBY;
  state.name = null;
  state.login += 1;
  // What the client still holds back from the earlier login (an emit made while it was
  // disconnected) would otherwise go out first on this connection, under the new name. Its
  // acknowledgement then times out, and its line says it was not delivered.
  socket.sendBuffer = [];
  socket.auth = { name: $("name").value, resume: RESUME };
  $("login-error").textContent = "";
  $("status").textContent = "connecting…";
  socket.connect();
});

$("sign-out").addEventListener("click", () => {
  socket.disconnect(); // the others see us leave with the reason "client namespace disconnect"
  abandonRejoin("signed out before it was sent");
  showLogin();
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("room-name").value.trim();
  if (name) joinRoom(name, { show: true, afterOutage: true });
  $("room-name").value = "";
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  sendMessage(text);
  $("text").value = "";
  state.lastTypingSent = 0; // the next keystroke is news again
});

// Typing is throttled: sending every keystroke would flood the room for no benefit, since
// receivers show the indicator for a few seconds anyway.
$("text").addEventListener("input", () => {
  const now = Date.now();
  if ($("text").value && now - state.lastTypingSent > TYPING_SEND_EVERY_MS) {
    state.lastTypingSent = now;
    // Volatile: dropped when not connected, rather than sent late (maybe under a later login);
    // also, over polling, while a request is on its way: a lost one only hides the indicator.
    socket.volatile.emit("typing", state.current);
  }
});

$("image-input").addEventListener("change", () => {
  const file = $("image-input").files[0];
  $("image-input").value = ""; // so picking the same file again fires "change" again
  if (file) sendImage(file);
});

// ----- events from the server ---------------------------------------------------------------------

// The first event on every (re)connection: the connect handler sends it.
socket.on("welcome", ({ name, room: lobby, users }) => {
  const reconnected = state.name !== null; // reset by the login form
  state.name = name;
  $("me").textContent = "signed in as " + name;
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  $("sign-out").hidden = false;
  room(lobby).users = users;
  notice(lobby, reconnected ? "Reconnected." : `You are in #${lobby} as ${name}.`);
  // After an automatic reconnection the server sees a brand-new socket, in the lobby only: join
  // again the rooms we were in.
  const rejoins = [...state.rooms.keys()]
    .filter((other) => other !== lobby)
    .map((other) => joinRoom(other, { show: false }));
  // (A room that cannot be joined again says so; what waits for it is then refused by the server.)
  const connection = state.connection;
  Promise.all(rejoins).then(() => markRejoined(connection));
  switchTo(state.rooms.has(state.current) ? state.current : lobby);
});

socket.on("message", ({ room: roomName, from, text, at }) => {
  stopTyping(roomName, from);
  addLine(roomName, { from, text, at });
});

socket.on("image", ({ room: roomName, from, mime, data, at }) => {
  stopTyping(roomName, from);
  // `data` arrives as an ArrayBuffer; a Blob URL lets an <img> show it without base64.
  const url = URL.createObjectURL(new Blob([data], { type: mime }));
  addLine(roomName, { from, imageUrl: url, at });
});

socket.on("typing", ({ room: roomName, name }) => {
  const r = room(roomName);
  clearTimeout(r.typing.get(name));
  r.typing.set(name, setTimeout(() => stopTyping(roomName, name), TYPING_SHOW_MS));
  if (roomName === state.current) renderTyping();
});

function stopTyping(roomName, name) {
  const r = state.rooms.get(roomName);
  if (!r || !r.typing.has(name)) return;
  clearTimeout(r.typing.get(name));
  r.typing.delete(name);
  if (roomName === state.current) renderTyping();
}

socket.on("user joined", ({ room: roomName, name, users }) => {
  room(roomName).users = users;
  notice(roomName, `${name} joined.`);
  if (roomName === state.current) renderUsers();
});

socket.on("user left", ({ room: roomName, name, users, reason }) => {
  room(roomName).users = users;
  stopTyping(roomName, name);
  notice(roomName, `${name} left (${reason}).`);
  if (roomName === state.current) renderUsers();
});

// ----- connection state -----------------------------------------------------------------------------

socket.on("connect", () => {
  $("status").textContent = "connected (" + socket.io.engine.transport.name + ")";
  // The first transport is HTTP long-polling; the client upgrades to WebSocket when it can.
  socket.io.engine.once("upgrade", (transport) => {
    $("status").textContent = "connected (" + transport.name + ")";
  });
});

socket.on("connect_error", (err) => {
  if (socket.active) {
    // A network problem: the client retries by itself.
    $("status").textContent = "reconnecting…";
  } else {
    // The server refused us (ConnectRefused): `err.message` is its message, `err.data` its data.
    $("status").textContent = "not connected";
    abandonRejoin("the server refused the reconnection before it was sent");
    const suggestion = err.data?.suggestion;
    if (suggestion) $("name").value = suggestion;
    showLogin((err.data?.detail ?? err.message) + (suggestion ? ` How about ${suggestion}?` : ""));
  }
});

socket.on("disconnect", (reason) => {
  $("status").textContent = "disconnected: " + reason;
  state.connection += 1;
  awaitRejoin();
  // After "io server disconnect" the client does not reconnect by itself; other reasons (network,
  // server restart) reconnect automatically and the page keeps its state meanwhile.
  if (!socket.active && reason !== "io client disconnect") {
    abandonRejoin("disconnected by the server before it was sent");
    showLogin("Disconnected by the server.");
  }
});
