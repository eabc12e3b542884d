// s3rver in a process of its own (it is CPU-bound and needs --openssl-legacy-provider for
// paginated listings: without it a truncated listing is a 500 InternalError), with
// counters of what it served so every tool's requests and bytes are measured by the same
// meter. Started with an IPC channel: prints {"port":N} on stdout, answers a 'counters'
// message with {requests, bytes, bytesIn} (sent, and received: uploads); exits when the
// channel closes, so it never outlives the runner.
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  process.stderr.write('usage: s3rver-child.mjs <directory> <bucket>\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const address = await server.run();

let requests = 0;
// Bytes written to sockets that have closed, plus the live sockets' counts when asked:
// headers included, which is a few hundred bytes a request next to MiB-sized bodies.
let closedBytes = 0;
let closedBytesIn = 0;
const live = new Set();
server.httpServer.on('request', () => {
  requests++;
});
server.httpServer.on('connection', (socket) => {
  live.add(socket);
  socket.on('close', () => {
    live.delete(socket);
    closedBytes += socket.bytesWritten;
    closedBytesIn += socket.bytesRead;
  });
});

process.on('message', (message) => {
  if (message !== 'counters') return;
  let bytes = closedBytes;
  let bytesIn = closedBytesIn;
  for (const socket of live) {
    bytes += socket.bytesWritten;
    bytesIn += socket.bytesRead;
  }
  process.send?.({ requests, bytes, bytesIn });
});
process.on('disconnect', () => {
  server.close().finally(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
