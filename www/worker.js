// A Web Worker running the same wasm as the page: it runs one part of an experiment per message
// and posts progress, then the partial result (JSON) or an error. The page cancels a run by terminating the worker.
import init, { worker_run } from './pkg/reward_reco.js';

const ready = init();

self.onmessage = async (event) => {
  const { id, lesson, query, part, parts } = event.data;
  try {
    await ready;
    const result = worker_run(lesson, query, part, parts, (progress, stage) => self.postMessage({ id, progress, stage }));
    self.postMessage({ id, result });
  } catch (error) {
    // A panic has already been posted by the panic hook; this covers plain errors.
    self.postMessage({ id, error: String(error && error.message ? error.message : error) });
  }
};
