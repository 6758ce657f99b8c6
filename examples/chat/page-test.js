#!/usr/bin/env node
// The chat page itself (examples/chat/static/chat.js) in headless Chromium, through outages.
//
//   cargo run --example chat &
//   node examples/chat/page-test.js http://127.0.0.1:3000 /usr/bin/chromium
//
// The page is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port, no
// extra package), the way a user would: forms filled and submitted. A second user, the official
// Node client (socket.io-client from NODE_PATH), watches what reaches the rooms. Outages are the
// page's own connection closed under it (`socket.io.engine.close()`): the client sees a lost
// transport and reconnects by itself, as after a network drop.
//
// Prints one line per check and exits non-zero at the first failure.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");

const support = require("./test-support");
const { io } = support;

const url = process.argv[2] || "http://127.0.0.1:3000";
const chromiumPath = process.argv[3] || "/usr/bin/chromium";
const tag = crypto.randomInt(1000, 9999);
const ROOM = `page-${tag}`;
const TIMEOUT_MS = 10000;

// ----- Chromium over the DevTools protocol ----------------------------------------------------------

// Messages on the pipe are JSON, each ended by a NUL byte: Chromium reads fd 3, writes fd 4.
class Browser {
  constructor() {
    this.profile = fs.mkdtempSync(path.join(os.tmpdir(), "sockio-chat-page-"));
    this.process = spawn(
      chromiumPath,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--remote-debugging-pipe",
        `--user-data-dir=${this.profile}`,
        "about:blank",
      ],
      { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
    );
    this.stderr = "";
    this.process.stdio[2].setEncoding("utf8");
    this.process.stdio[2].on("data", (text) => {
      this.stderr = (this.stderr + text).slice(-4000);
    });
    this.nextId = 1;
    this.pending = new Map();
    this.buffer = "";
    const output = this.process.stdio[4];
    output.setEncoding("utf8");
    output.on("data", (text) => this.receive(text));
    this.process.on("exit", (code, signal) => {
      for (const { reject } of this.pending.values()) {
        reject(new Error(`Chromium exited (${code ?? signal}): ${this.stderr}`));
      }
      this.pending.clear();
    });
  }

  receive(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.indexOf("\0")) >= 0) {
      const message = JSON.parse(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end + 1);
      const waiting = this.pending.get(message.id);
      if (!waiting) continue; // an event: none is subscribed to
      this.pending.delete(message.id);
      if (message.error) waiting.reject(new Error(`${waiting.method}: ${message.error.message}`));
      else waiting.resolve(message.result);
    }
  }

  send(method, params = {}, sessionId = undefined) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.process.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
    });
  }

  async open(pageUrl) {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await this.send("Page.navigate", { url: pageUrl }, sessionId);
    await page.waitFor("the page's script", "typeof socket !== 'undefined' && document.readyState === 'complete'");
    return page;
  }

  // Asks Chromium to close (its helper processes go with it); kills it if it does not.
  async close() {
    const exited = new Promise((resolve) => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) resolve();
      else this.process.once("exit", resolve);
    });
    this.send("Browser.close").catch(() => {});
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}

class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
  }

  // Runs `expression` in the page (its top-level bindings, `socket`, `state`, `$`, are in scope)
  // and returns its value, awaited if it is a promise.
  async eval(expression) {
    const { result, exceptionDetails } = await this.browser.send(
      "Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true },
      this.sessionId,
    );
    if (exceptionDetails) {
      throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    }
    return result.value;
  }

  // Runs `statements` in the page for their effect (their values, such as the client objects
  // that `socket.io` calls return, are not sent back).
  async run(statements) {
    await this.eval(`${statements};\nundefined`);
  }

  async waitFor(what, expression) {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const value = await this.eval(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async login(name) {
    await this.run(`$("name").value = ${JSON.stringify(name)}; $("login").requestSubmit();`);
    await this.waitFor(`welcome as ${name}`, `state.name === ${JSON.stringify(name)}`);
  }

  // The delivery status of the page's own line holding `text`, once it is no longer pending.
  async delivery(text) {
    const line = `[...document.querySelectorAll("li.own")].find((li) => li.textContent.includes(${JSON.stringify(text)}))`;
    return this.waitFor(
      `an answer for ${JSON.stringify(text)}`,
      `(() => { const li = ${line}; return li && !li.classList.contains("pending") && li.querySelector(".delivery").textContent; })()`,
    );
  }
}

// ----- the watcher: a second user, the official Node client ------------------------------------

function connect(name) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth: { name }, forceNew: true, reconnection: false, transports: ["websocket"] });
    socket.once("welcome", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

// Resolves with the next `event` on `socket` whose data satisfies `match`.
const next = (socket, event, match) => support.next(socket, event, match, TIMEOUT_MS);

// ----- the checks ---------------------------------------------------------------------------------

async function main() {
  const browser = new Browser();
  let watcher;
  const seen = []; // every message and typing event the watcher got: [event, data]
  let passed = 0;
  const check = async (title, run) => {
    await run();
    passed += 1;
    console.log(`ok ${passed} - ${title}`);
  };
  try {
    const aliceName = `alice${tag}`;
    const bobName = `bob${tag}`;
    watcher = await connect(`watch${tag}`);
    for (const event of ["message", "typing"]) watcher.on(event, (data) => seen.push([event, data]));
    const joined = await watcher.timeout(TIMEOUT_MS).emitWithAck("join", ROOM);
    assert.ok(joined.Ok, `the watcher joins ${ROOM}: ${JSON.stringify(joined)}`);

    const page = await browser.open(url);

    await check("the page logs in and joins a room", async () => {
      await page.login(aliceName);
      await page.run(`$("room-name").value = ${JSON.stringify(ROOM)}; $("join-form").requestSubmit();`);
      await page.waitFor(`the page in ${ROOM}`, `state.current === ${JSON.stringify(ROOM)}`);
    });

    await check("a message sent during an outage waits for the room, through a second outage during the rejoin", async () => {
      const text = "through two outages";
      const arrived = next(watcher, "message", (m) => m.text === text);
      // On the WebSocket: an outage during the upgrade would wait for it, and the message go
      // out before it.
      await page.waitFor("the WebSocket upgrade", `socket.io.engine.transport.name === "websocket"`);
      // The second outage comes as the page's rejoin requests are out (the page's own "welcome"
      // listener, registered first, has sent them); the first, right away.
      const waiting = await page.eval(`(() => {
        socket.once("welcome", () => socket.io.engine.close());
        socket.io.engine.close();
        $("text").value = ${JSON.stringify(text)};
        $("composer").requestSubmit();
        return state.rejoin !== null && !socket.connected;
      })()`);
      assert.ok(waiting, "the message waits for a rejoin");
      assert.equal(await page.delivery(text), "✓");
      const message = await arrived;
      assert.equal(message.from, aliceName);
      assert.equal(message.room, ROOM);
    });

    await check("a message waiting when the user signs out fails, and never goes out under the next login", async () => {
      const text = "from the first login";
      await page.run(`switchTo(LOBBY)`);
      // An outage that lasts: the client would wait 60 s before reconnecting.
      await page.run(`
        socket.io.reconnectionDelay(60000);
        socket.io.reconnectionDelayMax(60000);
        socket.io.engine.close();
        $("text").value = "typing during the outage";
        $("text").dispatchEvent(new Event("input"));
        $("text").value = ${JSON.stringify(text)};
        $("composer").requestSubmit();
      `);
      await page.waitFor("the outage", `!socket.connected`);
      await page.run(`$("sign-out").click()`);
      assert.equal(await page.delivery(text), "not delivered: signed out before it was sent");
      await page.run(`socket.io.reconnectionDelay(1000); socket.io.reconnectionDelayMax(5000);`);
      await page.login(bobName);
      // What bob sends now comes after anything the page still held for alice.
      const marker = "bob's first message";
      const arrived = next(watcher, "message", (m) => m.text === marker);
      await page.run(`$("text").value = ${JSON.stringify(marker)}; $("composer").requestSubmit();`);
      assert.equal(await page.delivery(marker), "✓");
      assert.equal((await arrived).from, bobName);
      const leaked = seen.filter(([event, data]) =>
        (event === "message" && data.text === text) || (event === "typing" && data.name === bobName));
      assert.deepEqual(leaked, [], "nothing of alice's login went out as bob");
    });

    console.log(`all ${passed} checks passed`);
  } catch (error) {
    console.log(`FAIL: ${error.stack}`);
    process.exitCode = 1;
  } finally {
    watcher?.close();
    await browser.close();
  }
}

main();
