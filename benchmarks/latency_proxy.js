// A TCP proxy that adds round-trip latency: every chunk, in either direction, is
// delayed by half the round trip, in order. TLS passes through untouched.
//
// Usage: node latency_proxy.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT RTT_MS
// Prints "ready" once listening. On SIGUSR2 it prints "connections N peak M" (the
// connections opened, and the most open at once, since the last such line) and
// starts counting again; on SIGTERM it prints the same and exits.
"use strict";
const net = require("net");

const [listenPort, upHost, upPort, rttMs] = process.argv.slice(2);
const half = Number(rttMs) / 2;
let connections = 0;
let open = 0;
let peak = 0;

function delayed(from, to) {
  // each chunk leaves `half` ms after it came; a timer per chunk keeps the order,
  // since timers of equal delay fire in the order they were set
  from.on("data", (chunk) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, half);
  });
  from.on("end", () => setTimeout(() => to.end(), half));
  from.on("error", () => setTimeout(() => to.destroy(), half));
  from.on("close", () => setTimeout(() => to.destroy(), half));
}

const server = net.createServer((client) => {
  connections += 1;
  open += 1;
  peak = Math.max(peak, open);
  client.on("close", () => (open -= 1));
  client.setNoDelay(true);
  const upstream = net.connect(Number(upPort), upHost);
  upstream.setNoDelay(true);
  delayed(client, upstream);
  delayed(upstream, client);
});

function tell() {
  process.stdout.write(`connections ${connections} peak ${peak}\n`);
  connections = 0;
  peak = open;
}

server.listen(Number(listenPort), "127.0.0.1", () => process.stdout.write("ready\n"));
process.on("SIGUSR2", tell);
process.on("SIGTERM", () => {
  tell();
  process.exit(0);
});
