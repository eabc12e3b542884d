import { coldCompare } from '../lib/cold-compare.js';
import type { Scenario } from '../lib/scenario.js';

const scenario: Scenario = {
  name: 'cold',
  description:
    'model dataset (config, tokenizer, shards, small files) pulled into an empty cache: ferry vs the ceiling and the peers',
  run: ({ context }) => coldCompare(context, 'cold', 'model'),
};

export default scenario;
