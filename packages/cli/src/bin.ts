#!/usr/bin/env node
import { main } from './cli.js';
import { processIo } from './cli-io.js';

// The AWS SDK warns on every run that its 2027 releases will need Node 22: news for the
// developers of ferry, noise on a user's terminal. --debug (or FERRY_DEBUG) keeps it.
const debug = process.argv.includes('--debug') || (process.env.FERRY_DEBUG ?? '') !== '';
if (!debug) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv.slice(2), processIo());
