import { coldCompare } from '../lib/cold-compare.js';
import type { Scenario } from '../lib/scenario.js';

const scenario: Scenario = {
  name: 'large-file',
  description:
    'one file of --large-size pulled cold: every connection on one file, and peak RSS must stay bounded whatever its size',
  run: ({ context }) => coldCompare(context, 'large-file', 'large-file'),
};

export default scenario;
