#!/usr/bin/env node
import { main } from './cli.js';
import { processIo } from './cli-io.js';
import { tuneTiering } from './v8-tiering.js';

tuneTiering();

// The library keeps the AWS SDK's warning that its 2027 releases need Node 22 off the
// terminal (news for ferry's developers, noise for its users); --debug lets it through.
if (process.argv.includes('--debug')) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'false';
}

process.exitCode = await main(process.argv.slice(2), processIo());
