"""Peak RSS of a sockio-conformance server while one polling client POSTs bodies of short
events (900 KB each) without waiting for the answers, each POST on its own connection.

    python3 bench/post_flood.py <sockio-conformance binary> <tokio|smol|threads> [posts] [event]

`event` is one packet of the body (default `42["nothing",0]`; `42[0]` makes about 150,000 of
them). Prints the events per POST, the POSTs' statuses, and the server's peak RSS (sampled
every 10 ms from /proc) and its RSS after."""
import http.client, json, subprocess, sys, threading, time, re

binary, runtime = sys.argv[1], sys.argv[2]
posts = int(sys.argv[3]) if len(sys.argv) > 3 else 6
server = subprocess.Popen([binary, "serve", "--runtime", runtime, "--profile", "socket-io",
                           "--port", "0", "--ping-timeout-ms", "60000"],
                          stdout=subprocess.PIPE, text=True)
line = server.stdout.readline()
port = int(re.search(r"(\d+)\s*$", line.strip()).group(1))

def req(method, path, body=b""):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
    r = c.getresponse()
    return r.status, r.read().decode(errors="replace")

def rss():
    with open(f"/proc/{server.pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS"):
                return int(l.split()[1]) // 1024

st, body = req("GET", "/socket.io/?EIO=4&transport=polling")
sid = json.loads(body[1:])["sid"]
uri = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
req("POST", uri, b"40"); req("GET", uri)
one = sys.argv[4] if len(sys.argv) > 4 else '42["nothing",0]'
flood = "\x1e".join([one] * (900_000 // (len(one) + 1))).encode()
peak = [rss()]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss()); time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
answers = []
ts = [threading.Thread(target=lambda: answers.append(req("POST", uri, flood)[0])) for _ in range(posts)]
t0 = time.time()
for t in ts: t.start(); time.sleep(0.05)
for t in ts: t.join()
time.sleep(0.5)
done.set()
print(f"{runtime}: events per POST {flood.count(b'42')}, answers {sorted(answers)}, peak RSS {peak[0]} MB, after {rss()} MB, {time.time()-t0:.1f} s")
server.kill()
