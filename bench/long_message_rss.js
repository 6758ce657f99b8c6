// The client side of bench/long_message_rss.sh:
// node long_message_rss.js PORT SERVER_PID CLIENTS BYTES [to-clients | from-clients]
const { io } = require('socket.io-client');
const fs = require('fs');

const [port, pid, clients, bytes] = process.argv.slice(2, 6).map(Number);
const direction = process.argv[6] || 'to-clients';
const rssKiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

(async () => {
  const sockets = [];
  let received = 0;
  for (let i = 0; i < clients; i++) {
    const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true });
    socket.on('bcast', () => {
      received++;
    });
    sockets.push(socket);
    // In steps, so the connects do not all wait on the server's accept queue at once.
    if (i % 100 === 99) await sleep(50);
  }
  const deadline = Date.now() + 120_000;
  const waitFor = async (done, what) => {
    while (!done()) {
      if (Date.now() > deadline) {
        console.error(`long_message_rss.js: gave up waiting for ${what}`);
        process.exit(1);
      }
      await sleep(50);
    }
  };
  await waitFor(() => sockets.every((socket) => socket.connected), 'the clients to connect');
  await sleep(1000);
  const before = rssKiB();
  let what;
  if (direction === 'from-clients') {
    // An event without a handler: the server reads it whole and drops it, and answers nothing,
    // so the wait is for the server's RSS to stop growing.
    sockets.forEach((socket) => socket.emit('unhandled', 'x'.repeat(bytes)));
    let last = -1;
    while (rssKiB() !== last) {
      last = rssKiB();
      await sleep(1000);
    }
    what = `each client sent one ${bytes}-byte message`;
  } else {
    sockets[0].emit('broadcast', 'x'.repeat(bytes));
    await waitFor(() => received >= clients, 'every client to get the broadcast');
    what = `one ${bytes}-byte broadcast`;
  }
  await sleep(2000);
  const after = rssKiB();
  const perConnection = ((after - before) / clients).toFixed(1);
  console.log(
    `${clients} clients, ${what}: server VmRSS ${before} KiB before, ` +
      `${after} KiB after; ${perConnection} KiB more per connection`,
  );
  sockets.forEach((socket) => socket.close());
  process.exit(0);
})();
