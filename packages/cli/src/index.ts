export { main } from './cli.js';
export type { CliIo, CliStream, InterruptSignal } from './cli-io.js';
