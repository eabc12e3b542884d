import { once } from 'node:events';
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { openSource } from './open-source.js';

// Its own file: the SDK warns once per process (per module instance), so no other client may
// have been built before this one.
it("keeps the AWS SDK's Node-version warning off the host's stderr, and the host's environment as it was", async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  // A port that answers nothing useful: the client is built, the request fails.
  const server = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const source = openSource('s3://models/m', {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    region: 'us-east-1',
  });
  try {
    await expect(source.stat('config.json')).rejects.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => w.includes('AWS SDK'))).toEqual([]);
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBeUndefined();
  } finally {
    process.off('warning', onWarning);
    await source.close();
    server.close();
  }
});
