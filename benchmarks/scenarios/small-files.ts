import { coldCompare } from '../lib/cold-compare.js';
import type { Scenario } from '../lib/scenario.js';

const scenario: Scenario = {
  name: 'small-files',
  description:
    'thousands of 64 KiB files (--small-files) pulled cold: per-file overhead, where one request per file dominates',
  run: ({ context }) => coldCompare(context, 'small-files', 'small-files'),
};

export default scenario;
