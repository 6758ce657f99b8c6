// What the chat's two checkers (smoke-test.js, page-test.js) share: the official Node client, and
// waiting for an event.
"use strict";

const path = require("node:path");

// socket.io-client from NODE_PATH or a local node_modules, else from the repository's testkit.
function loadClient() {
  try {
    return require("socket.io-client");
  } catch {
    return require(path.join(__dirname, "../../testkit/clients/node_modules/socket.io-client"));
  }
}

// Resolves with the next `event` on `socket` whose data satisfies `match`; rejects after
// `timeoutMs`.
function next(socket, event, match, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${JSON.stringify(event)} within ${timeoutMs} ms`));
    }, timeoutMs);
    function listener(data) {
      if (!match(data)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(data);
    }
    socket.on(event, listener);
  });
}

module.exports = { io: loadClient().io, next };
