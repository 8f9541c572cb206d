// Loads the wasm app. The module object is kept on `window.rorec` for the browser tests.
import init, * as rorec from './pkg/reward_reco.js';

window.rorec = rorec;
// The offline copy (www/sw.js): after one visit the tutorial works without a network.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn('no offline copy:', error));
}
// The wasm is compiled once, here, and the compiled module is posted to every worker: a worker then
// only instantiates it (no fetch, no compile of its own), and the code the engine compiles for
// one thread serves them all. Three copies compiling at once on two cores kept the workers from
// being ready until ~340 ms after opening; see the README's "How live the lessons are".
const compiled = WebAssembly.compileStreaming(fetch(new URL('./pkg/reward_reco_bg.wasm', import.meta.url)));
let wasmModule;
const waiting = [];
compiled.then(
  (module) => { wasmModule = module; waiting.splice(0).forEach((w) => w.postMessage({ wasm: module })); },
  // The worker then loads the wasm itself (and so will the page, below).
  () => { wasmModule = null; waiting.splice(0).forEach((w) => w.postMessage({ wasm: null })); },
);
/** A worker running www/worker.js, given the compiled module as soon as there is one. */
window.__rorecStartWorker = () => {
  const worker = new Worker('./worker.js', { type: 'module' });
  if (wasmModule !== undefined) worker.postMessage({ wasm: wasmModule });
  else waiting.push(worker);
  return worker;
};
// The workers that will run the first experiment start now, while the page loads: the first run
// finds them ready. `src/ui/worker.rs` takes them from this list before it starts any of its own.
// The first also starts its part of the page's opening run as soon as it has the wasm
// (`opening_part` in src/ui/worker.rs): the app's own message for that part adopts the run
// (www/worker.js). Only the first: with every part started early, the workers took both cores of
// the README's 2-core machine during the page's first render, and its tasks grew longer.
const cores = Math.min(16, Math.max(1, navigator.hardwareConcurrency || 1));
// The speaker view runs no lesson (the rule of `is_speaker_window` in src/ui/slides.rs; the wasm is
// not loaded yet).
const speakerView = location.search.includes('speaker');
window.__rorecSpareWorkers = Array.from({ length: cores }, (_, index) => {
  const worker = window.__rorecStartWorker();
  if (index === 0 && !speakerView) worker.postMessage({ opening: location.hash.replace(/^#/, ''), cores, worker: index });
  return worker;
});
compiled
  .then((module) => init({ module_or_path: module }), () => init())
  // The app's first render in a task of its own, not in the one that instantiated the module
  // (together they made one of the page's longest tasks).
  .then(() => new Promise((resolve) => { setTimeout(resolve, 0); }))
  .then(() => rorec.run_app())
  .catch((error) => {
    const app = document.getElementById('app');
    app.innerHTML = '';
    const panel = document.createElement('div');
    panel.id = 'panic-panel';
    panel.setAttribute('role', 'alert');
    panel.innerHTML = '<h2>The tutorial could not start</h2><p>This browser could not load the WebAssembly module.</p><pre></pre><button>Reload</button>';
    // A listener, not an inline onclick: the Content-Security-Policy allows no inline script.
    panel.querySelector('button').addEventListener('click', () => location.reload());
    panel.querySelector('pre').textContent = String(error);
    app.appendChild(panel);
  });
