// Loads the wasm app. The module object is kept on `window.rorec` for the browser tests.
import init, * as rorec from './pkg/reward_reco.js';

window.rorec = rorec;
// The offline copy (www/sw.js): after one visit the tutorial works without a network.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn('no offline copy:', error));
}
// The first text a renderer lays out in a font (regular, bold, italic, monospace, the math font, its
// stretchy operators, the form controls' font) costs it that font's loading and shaping caches: in a
// trace of fast MIPS's opening, the app's first layouts took 36 and 35 ms for 179 and 104 objects,
// where laying out the whole page again takes 12–18 ms. While the wasm compiles, the page's thread
// is idle: lay out a sample of each, off screen and hidden, one per task, so that the lesson's
// first layouts find the fonts ready and no task of its opening is long. Removed when done.
function warmFonts() {
  const samples = [
    '<p>Text <b>bold</b> <i>italic</i> <strong>strong</strong> <em>em</em> – × · ± − ² ε → ← ✓ ✗ ≤ ≥ … π θ Σ √</p>',
    '<code>code 0.123</code> <kbd>Esc</kbd>',
    '<math><msub><mi>θ</mi><mi>k</mi></msub><mo>=</mo><mi>x</mi><msup><mi>e</mi><mn>2</mn></msup></math>',
    '<math display="block"><mfrac><mn>1</mn><mi>N</mi></mfrac><mo>(</mo><mi>a</mi><mo>)</mo></math>',
    '<math display="block"><munderover><mo>∑</mo><mrow><mi>k</mi><mo>=</mo><mn>1</mn></mrow><mi>K</mi></munderover>'
      + '<msqrt><mi>x</mi></msqrt><mover><mi>V</mi><mo>^</mo></mover></math>',
    '<table><tr><th>head</th><td>1,234</td></tr></table><h1>H</h1><h2>H</h2><h3>H</h3>',
    '<button>button</button><input value="1"><select><option>option</option></select><input type="range"><input type="checkbox">',
  ];
  const box = document.createElement('div');
  box.style.cssText = 'position:absolute;left:-10000px;top:0;width:600px;visibility:hidden';
  box.setAttribute('aria-hidden', 'true');
  box.inert = true;
  document.body.appendChild(box);
  const next = (i) => {
    if (i === samples.length) {
      box.remove();
      return;
    }
    box.insertAdjacentHTML('beforeend', samples[i]);
    void box.offsetHeight; // lay it out now, in this task
    setTimeout(() => next(i + 1), 0);
  };
  setTimeout(() => next(0), 0);
}
warmFonts();
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
