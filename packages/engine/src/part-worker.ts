// The piscina entry point: a worker thread's part runner.
import { workerData } from 'piscina';
import { PartRunner } from './part-runner.js';
import type { PartTask, PartTaskOutcome, PartWorkerData } from './part-task.js';

const runner = new PartRunner(workerData as PartWorkerData);

export default function runPartTask(task: PartTask): Promise<PartTaskOutcome> {
  return runner.run(task);
}
