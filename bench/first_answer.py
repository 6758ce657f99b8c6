"""Times new connections to a Socket.IO server, one at a time: connect, send a handshake GET,
read the first bytes of the answer. Usage: first_answer.py PORT COUNT (bench/idle_server.sh)."""
import socket
import statistics
import sys
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
times = []
for _ in range(count):
    begun = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(request)
        if not conn.recv(4096):
            sys.exit("the server closed the connection without answering")
    times.append((time.perf_counter() - begun) * 1000)
    time.sleep(0.037)
times.sort()
print(f"first answer over {count} new connections: median {statistics.median(times):.2f} ms, "
      f"p90 {times[int(count * 0.9)]:.2f} ms, max {times[-1]:.2f} ms")
