/* The till without a network (docs/pages.md): what it keeps and how it checks a QR code.
 *
 * Kept in IndexedDB, in this browser only: the till pack (GET /v1/till/pack), the
 * redemptions made offline and waiting to be sent (their Idempotency-Key, the token and
 * the amounts; nothing else of the holder), and the vouchers redeemed offline here.
 *
 * `check` is service/domain/tokens.verify and the redemption rules the pack can answer,
 * in the service's order (domain/redemptions.RULE_ORDER) and with its problem codes:
 * token (typ, alg EdDSA, kid in the pack's JWKS, the Ed25519 signature by WebCrypto,
 * the claims, then expiry by this till's clock), partner (aud), voucher (the pack's
 * list of vouchers that can no longer be used, then those redeemed offline here),
 * offer (in the pack and inside its window). The holder and the limits cannot be
 * checked offline: the service records such a redemption with its conflict.
 */
"use strict";

window.YoudaiOffline = (function () {
  const DB_NAME = "youdai-till";
  const TOKEN_TYP = "yd-voucher+jwt";
  const LEEWAY_SECONDS = 5; // tokens.LEEWAY_SECONDS
  const MAX_TOKEN_CHARS = 2048;
  const MAX_TIMESTAMP = 253402300799;
  const REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "ofr", "jti"];
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
  function storedPack() {
    return transaction(["state"], "readonly", (s) => read(s.state.get("pack")));
  }

  function savePack(pack, fetchedAt) {
    return transaction(["state"], "readwrite", (s) => {
      s.state.put({ pack: pack, fetched_at: fetchedAt }, "pack");
    });
  }

  function dropPack() {
    return transaction(["state"], "readwrite", (s) => {
      s.state.delete("pack");
    });
  }

  /** Queue an offline redemption and mark its voucher used here, in one transaction: a
   * second one for the same voucher fails (ConstraintError) and nothing is queued. */
  function enqueue(entry) {
    return transaction(["queue", "used"], "readwrite", (s) => {
      s.used.add({ voucher: entry.voucher, made_at: entry.made_at });
      s.queue.add(entry);
    });
  }

  /** Waiting redemptions, oldest first. */
  async function queued() {
    const all = await transaction(["queue"], "readonly", (s) => read(s.queue.getAll()));
    return all.sort((a, b) => a.made_at - b.made_at || a.seq - b.seq);
  }

  /** The service has answered for this one, once and for all: it no longer waits. Its
   * voucher stays "used here" until a pack fetched after now says what the service knows. */
  function forget(entry, answeredAt) {
    return transaction(["queue", "used"], "readwrite", (s) => {
      s.queue.delete(entry.key);
      s.used.put({ voucher: entry.voucher, made_at: entry.made_at, sent_at: answeredAt });
    });
  }

  /** A fresh pack fetched at `fetchedAt` knows about everything sent before it. */
  function forgetSentBefore(fetchedAt) {
    return transaction(["used"], "readwrite", async (s) => {
      for (const used of await read(s.used.getAll())) {
        if (used.sent_at !== undefined && used.sent_at < fetchedAt) s.used.delete(used.voucher);
      }
    });
  }

  async function usedHere(voucher) {
    return !!(await transaction(["used"], "readonly", (s) => read(s.used.get(voucher))));
  }

  // ----- WebCrypto -----

  let ed25519 = null;

  /** Whether this browser verifies Ed25519 signatures (WebCrypto, a secure context). */
  function supported() {
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

  function bytes(segment) {
    if (!/^[A-Za-z0-9_-]*$/.test(segment)) throw new Error("not base64url");
    const padded = segment.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((segment.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function json(segment) {
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes(segment)));
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return value;
  }

  // ----- the check -----

  function refused(code, extra) {
    return { problem: Object.assign({ code: code }, extra || {}) };
  }

  function isString(value) {
    return typeof value === "string" && value !== "";
  }

  /** tokens.verify, by the pack: the claims, or the problem the service would answer. */
  async function verifyToken(token, pack, nowSeconds) {
    if (typeof token !== "string" || !token || token.length > MAX_TOKEN_CHARS) return refused("token_invalid");
    const parts = token.split(".");
    let header;
    let claims;
    let signature;
    try {
      if (parts.length !== 3) throw new Error("not a compact JWS");
      header = json(parts[0]);
      claims = json(parts[1]);
      signature = bytes(parts[2]);
    } catch (error) {
      return refused("token_invalid");
    }
    // The algorithm is pinned here, never taken from the token (RFC 8725 §2.1).
    if (header.typ !== TOKEN_TYP || header.alg !== "EdDSA" || typeof header.kid !== "string") {
      return refused("token_invalid");
    }
    const jwk = ((pack.jwks && pack.jwks.keys) || []).find(
      (k) => k.kid === header.kid && k.kty === "OKP" && k.crv === "Ed25519",
    );
    if (!jwk) return refused("token_invalid");
    let genuine = false;
    try {
      const key = await crypto.subtle.importKey(
        "jwk",
        { kty: "OKP", crv: "Ed25519", x: jwk.x },
        { name: "Ed25519" },
        false,
        ["verify"],
      );
      const signed = new TextEncoder().encode(parts[0] + "." + parts[1]);
      genuine = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, signed);
    } catch (error) {
      genuine = false;
    }
    if (!genuine) return refused("token_invalid");
    if (REQUIRED_CLAIMS.some((name) => !(name in claims))) return refused("token_invalid");
    if (pack.issuer !== undefined && claims.iss !== pack.issuer) return refused("token_invalid");
    const issued = claims.iat;
    const notBefore = claims.nbf;
    const expires = claims.exp;
    if (![issued, notBefore, expires].every(Number.isSafeInteger)) return refused("token_invalid");
    const lifetime = pack.token_ttl_seconds;
    if (
      !(issued >= 0 && issued <= expires && expires <= MAX_TIMESTAMP) ||
      (Number.isInteger(lifetime) && expires - issued > lifetime + LEEWAY_SECONDS)
    ) {
      return refused("token_invalid");
    }
    if (!isString(claims.aud) || !isString(claims.sub) || !isString(claims.ofr)) return refused("token_invalid");
    if (expires <= nowSeconds - LEEWAY_SECONDS) return refused("token_expired");
    if (notBefore > nowSeconds + LEEWAY_SECONDS || issued > nowSeconds + LEEWAY_SECONDS) {
      return refused("token_not_yet_valid");
    }
    if (claims.aud !== pack.partner.id) return refused("wrong_partner");
    return { claims: claims };
  }

  /** Everything the till can check offline, in the service's order: {voucher, offer} or {problem}. */
  async function check(token, pack, nowMs) {
    const verified = await verifyToken(token, pack, Math.floor(nowMs / 1000));
    if (verified.problem) return verified;
    const claims = verified.claims;
    if (pack.partner.status !== undefined && pack.partner.status !== "active") return refused("partner_inactive");
    if ((pack.revoked_vouchers || []).includes(claims.sub)) return refused("voucher_revoked");
    if (await usedHere(claims.sub)) return refused("voucher_used_up");
    const offer = (pack.offers || []).find((o) => o.id === claims.ofr);
    if (
      !offer ||
      (offer.status !== undefined && offer.status !== "active") ||
      (offer.starts_at && nowMs < Date.parse(offer.starts_at)) ||
      (offer.ends_at && nowMs >= Date.parse(offer.ends_at))
    ) {
      return refused("offer_inactive");
    }
    return { voucher: claims.sub, offer: offer };
  }

  /** Whether a pack may still be used offline: fetched, and not past its valid_until. */
  function fresh(pack, nowMs) {
    return !!pack && nowMs < Date.parse(pack.valid_until);
  }

  return {
    check: check,
    dropPack: dropPack,
    enqueue: enqueue,
    forget: forget,
    forgetSentBefore: forgetSentBefore,
    fresh: fresh,
    queued: queued,
    savePack: savePack,
    storedPack: storedPack,
    supported: supported,
  };
})();
