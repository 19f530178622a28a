/* What the till keeps for the day it has no network (docs/pages.md), in IndexedDB, in
 * this browser only: the till pack (GET /v1/till/pack), the redemptions made offline and
 * waiting to be sent (their Idempotency-Key, the body to send and when they were made;
 * nothing of the holder but the token), and the vouchers redeemed offline here.
 * How a QR code is checked offline is voucher-check.js, loaded only when needed.
 */

const DB_NAME = "youdai-till";
// RFC 8032's first test key: importing it proves the browser has Ed25519 at all.
const PROBE_KEY = { kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" };

// ----- IndexedDB: "state" (the pack), "queue" (by Idempotency-Key), "used" (by voucher) -----

let opened = null;

function db() {
  if (!opened) {
    opened = new Promise(function (resolve, reject) {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore("state");
        request.result.createObjectStore("queue", { keyPath: "key" });
        request.result.createObjectStore("used", { keyPath: "voucher" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

/** Run `work(stores)` in one transaction; resolves with what it returned once committed. */
async function transaction(names, mode, work) {
  const handle = await db();
  return new Promise(function (resolve, reject) {
    const tx = handle.transaction(names, mode);
    const stores = {};
    for (const name of names) stores[name] = tx.objectStore(name);
    let result;
    Promise.resolve(work(stores)).then((value) => (result = value), reject);
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function read(request) {
  return new Promise(function (resolve, reject) {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** The till pack as last fetched: {pack, fetched_at (ms, this till's clock)} or undefined. */
export function storedPack() {
  return transaction(["state"], "readonly", (s) => read(s.state.get("pack")));
}

export function savePack(pack, fetchedAt) {
  return transaction(["state"], "readwrite", (s) => {
    s.state.put({ pack: pack, fetched_at: fetchedAt }, "pack");
  });
}

export function dropPack() {
  return transaction(["state"], "readwrite", (s) => {
    s.state.delete("pack");
  });
}

/** Queue an offline redemption and mark its voucher used here, in one transaction: a
 * second one for the same voucher fails (ConstraintError) and nothing is queued. */
export function enqueue(entry) {
  return transaction(["queue", "used"], "readwrite", (s) => {
    s.used.add({ voucher: entry.voucher, made_at: entry.made_at });
    s.queue.add(entry);
  });
}

/** Waiting redemptions, oldest first. */
export async function queued() {
  const all = await transaction(["queue"], "readonly", (s) => read(s.queue.getAll()));
  return all.sort((a, b) => a.made_at - b.made_at || a.seq - b.seq);
}

/** The service has answered for this one, once and for all: it no longer waits. Its
 * voucher stays "used here" until a pack fetched after now says what the service knows. */
export function forget(entry, answeredAt) {
  return transaction(["queue", "used"], "readwrite", (s) => {
    s.queue.delete(entry.key);
    s.used.put({ voucher: entry.voucher, made_at: entry.made_at, sent_at: answeredAt });
  });
}

/** A fresh pack fetched at `fetchedAt` knows about everything sent before it. */
export function forgetSentBefore(fetchedAt) {
  return transaction(["used"], "readwrite", async (s) => {
    for (const used of await read(s.used.getAll())) {
      if (used.sent_at !== undefined && used.sent_at < fetchedAt) s.used.delete(used.voucher);
    }
  });
}

export async function usedHere(voucher) {
  return !!(await transaction(["used"], "readonly", (s) => read(s.used.get(voucher))));
}

// ----- WebCrypto -----

let ed25519 = null;

/** Whether this browser verifies Ed25519 signatures (WebCrypto, a secure context). */
export function supported() {
  if (!ed25519) {
    ed25519 =
      window.crypto && window.crypto.subtle
        ? crypto.subtle.importKey("jwk", PROBE_KEY, { name: "Ed25519" }, false, ["verify"]).then(
            () => true,
            () => false,
          )
        : Promise.resolve(false);
  }
  return ed25519;
}

/** Whether a pack may still be used offline: fetched, and not past its valid_until. */
export function fresh(pack, nowMs) {
  return !!pack && nowMs < Date.parse(pack.valid_until);
}
