/* The till's service worker (docs/pages.md): /scan opens with no network once it has been
 * opened online. The service serves this file at /scan-worker.js (its scope may then
 * cover /scan) with VERSION and FILES filled in: the till's files under their hashed
 * names. A release that changes any of them is a new worker, with a cache of its own
 * that replaces the old one.
 *
 * Only /scan and its files are answered here; every other request, the API's above all,
 * goes to the network as if there were no worker, and fails when the network is down.
 */
"use strict";

const VERSION = "dev";
const FILES = [];
const PAGE = "/scan";
const PREFIX = "youdai-till-";
const CACHE = PREFIX + VERSION;

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([PAGE].concat(FILES)))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", function (event) {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === PAGE) {
    event.respondWith(page(request));
  } else if (FILES.includes(url.pathname + url.search)) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});

/** The page from the network while there is one (a new release shows at once), kept for
 * the day there is none. */
async function page(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(PAGE, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(PAGE);
    if (kept) return kept;
    throw error;
  }
}
