// A Web Worker running the same wasm as the page. Each start message runs one part of an
// experiment in slices (PartRun.step): between slices it posts progress and the results so far
// ("live"), and it honours pause/resume messages. The page cancels a run by terminating the worker.
// A start message supersedes the run under way, unless it says `queue`: then it starts when the
// run under way has finished (a preview first, the full run right behind it in the same worker).
import init, { PartRun, opening_part } from './pkg/reward_reco.js';

// The page posts the compiled wasm first ({ wasm: module }, see www/main.js). A worker that is
// sent a job before any module (or a null one) loads the wasm itself.
let loadWasm;
const wasmGiven = new Promise((resolve) => { loadWasm = resolve; });
const ready = wasmGiven.then((module) => (module ? init({ module_or_path: module }) : init()));
let run = null;
let runId = 0;
// The page's opening run, started here as job 0 when main.js asks (see `opening_part` in
// src/ui/worker.rs): its part, and what it has posted so far, kept so that the app's own message
// for the same part adopts the run instead of starting it again.
let opening = null;
// Counts the runs begun: a run superseded while the wasm loads does not start.
let begun = 0;
// A run's first slice is short, so that its first results so far are drawn soon after a change;
// later slices are longer (fewer reports to send and draw).
const FIRST_SLICE_MS = 50;
const SLICE_MS = 200;
let sliced = 0;
let paused = false;
let scheduled = false;
let loading = false;
const queued = [];

const errorText = (error) => String(error && error.message ? error.message : error);

function schedule() {
  if (!scheduled && run && !paused) {
    scheduled = true;
    // A macrotask between slices, so that pause messages get through.
    setTimeout(tick, 0);
  }
}

/** Posts a message of run `id`, kept while that run is the opening run nobody has adopted yet. */
function post(message) {
  if (opening && message.id === 0) Object.assign(opening.posted, message);
  self.postMessage(message);
}

function tick() {
  scheduled = false;
  if (!run || paused) return;
  const id = runId;
  try {
    const done = run.step(sliced++ === 0 ? FIRST_SLICE_MS : SLICE_MS, (progress, stage) => post({ id, progress, stage }));
    if (done) {
      const result = run.partial();
      release();
      post({ id, result });
      if (queued.length) begin(queued.shift());
    } else {
      const live = run.live();
      if (live !== undefined) post({ id, live });
      schedule();
    }
  } catch (error) {
    // A panic has already been posted by the panic hook; this covers plain errors.
    release();
    post({ id, error: errorText(error) });
  }
}

const samePart = (a, b) => a.lesson === b.lesson && a.query === b.query && a.part === b.part && a.parts === b.parts
  && Boolean(a.preview) === Boolean(b.preview);

/** The app's first message for the opening run's part: the run goes on as the app's, and what it
 * has posted so far is posted again under the app's id (the app had not been listening), marked
 * `adopted` (the app reads no such field; the browser tests and a reader of devtools do). */
function adopt(data) {
  const { posted } = opening;
  opening = null;
  runId = data.id;
  for (const key of ['progress', 'live', 'result', 'error']) {
    if (posted[key] === undefined) continue;
    const message = { id: data.id, [key]: posted[key], adopted: true };
    if (key === 'progress') message.stage = posted.stage;
    self.postMessage(message);
  }
}

function release() {
  try { if (run) run.free(); } catch (_) { /* a dead instance after a panic */ }
  run = null;
}

self.onmessage = async (event) => {
  const data = event.data;
  if (data.wasm !== undefined) {
    loadWasm(data.wasm);
    return;
  }
  if (data.opening !== undefined) {
    // This worker's part of the page's opening run, unless the app has posted a run already.
    ready.then(() => {
      if (begun > 0) return;
      const job = opening_part(data.opening, data.cores, data.worker);
      if (job) begin(job);
    }).catch(() => { /* the app's own message will report a wasm that does not load */ });
    return;
  }
  loadWasm(null); // a job before any module: no-op once the module has come
  if (data.pause !== undefined) {
    paused = data.pause;
    schedule();
    return;
  }
  if (opening && !data.queue && data.id !== 0 && samePart(opening.data, data)) {
    adopt(data);
    return;
  }
  if (data.queue && (run || loading)) {
    queued.push(data);
    return;
  }
  queued.length = 0;
  begin(data);
};

async function begin(data) {
  const { id, lesson, query, part, parts, preview } = data;
  // Before the await: a pause that arrives while the wasm loads must not be overwritten.
  release();
  opening = id === 0 ? { data, posted: {} } : null;
  runId = id;
  const mine = ++begun;
  paused = false;
  loading = true;
  try {
    await ready;
    if (mine !== begun) return; // superseded while loading
    loading = false;
    run = new PartRun(lesson, query, part, parts, Boolean(preview));
    sliced = 0;
    schedule();
  } catch (error) {
    loading = false;
    release();
    post({ id, error: errorText(error) });
  }
}
