// Loads the wasm app. The module object is kept on `window.rorec` for the browser tests.
import init, * as rorec from './pkg/reward_reco.js';

window.rorec = rorec;
// The offline copy (www/sw.js): after one visit the tutorial works without a network.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn('no offline copy:', error));
}
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
