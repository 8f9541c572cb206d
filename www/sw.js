// The offline copy: after one visit the tutorial runs without a network (a class on a bad
// connection still has it). Every file of the app is cached when this worker installs; requests go
// to the network first (so a new build is seen at once) and fall back to the cache offline.
// .ci/build writes the build's fingerprint into BUILD, so that a new build gets a new cache.
const BUILD = '__BUILD__';
const CACHE = `rorec-${BUILD}`;
const FILES = ['./', './index.html', './main.js', './worker.js', './style.css', './manifest.webmanifest', './icon.svg',
  './pkg/reward_reco.js', './pkg/reward_reco_bg.wasm'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith('rorec-') && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(fetch(request)
    .then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(request, copy));
      }
      return response;
    })
    // Offline: the cached copy; a page address with its own query string falls back to the app.
    .catch(() => caches.match(request, { ignoreSearch: true }).then((hit) => hit || caches.match('./index.html'))));
});
