// Loads the wasm app. The module object is kept on `window.rorec` for the browser tests.
import init, * as rorec from './pkg/reward_reco.js';

window.rorec = rorec;
// The offline copy (www/sw.js): after one visit the tutorial works without a network.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn('no offline copy:', error));
}
// The workers that will run the first experiment start loading the wasm now, while the page loads
// its own copy (on another core): the first run finds them ready instead of starting them then.
// `src/ui/worker.rs` takes them from this list before it starts any worker of its own.
const cores = Math.min(16, Math.max(1, navigator.hardwareConcurrency || 1));
window.__rorecSpareWorkers = Array.from({ length: cores }, () => new Worker('./worker.js', { type: 'module' }));
init()
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
