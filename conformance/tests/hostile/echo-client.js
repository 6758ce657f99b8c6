// A bystander for the hostile-client suite: socket.io-client 4.8 connected to the server under
// attack, sending `message-with-ack` one after another (20 ms apart) and printing one line per
// answer: `ack <n> <latency ms>`. Anything else that happens is printed too, so the test can fail
// on it: `bad-ack`, `ack-timeout`, `disconnect <reason>`, `connect_error <message>`.
// Usage: node echo-client.js <socket.io-client dir> <url> <polling|websocket>
// It exits when its stdin closes.
const { io } = require(process.argv[2]);
const url = process.argv[3];
const transport = process.argv[4];

const socket = io(url, {
  transports: [transport],
  reconnection: false,
  timeout: 20000,
});
let n = 0;
let connected = false;

function tick() {
  const mine = ++n;
  const started = process.hrtime.bigint();
  socket.timeout(20000).emit('message-with-ack', { n: mine, pad: 'x'.repeat(64) }, (err, answer) => {
    if (err) {
      console.log(`ack-timeout ${mine}`);
    } else if (!answer || answer.n !== mine) {
      console.log(`bad-ack ${mine} ${JSON.stringify(answer)}`);
    } else {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      console.log(`ack ${mine} ${ms.toFixed(2)}`);
    }
    if (connected) setTimeout(tick, 20);
  });
}

socket.on('connect', () => {
  connected = true;
  console.log('connected');
  tick();
});
socket.on('disconnect', (reason) => {
  connected = false;
  console.log(`disconnect ${reason}`);
});
socket.on('connect_error', (e) => console.log(`connect_error ${e.message}`));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
