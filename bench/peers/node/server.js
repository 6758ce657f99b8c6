// The bench app on the official Node.js server (socket.io 4.8), default settings:
// echo, broadcast, join, to-room on "/", served at /socket.io/. Usage: node server.js PORT
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);
const httpServer = http.createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("broadcast", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    io.emit("bcast", ...args);
    if (ack) ack();
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("to-room", (room, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    io.to(room).emit("bcast", ...args);
    if (ack) ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
