/* A QR code checked by the till itself, when it has no network (docs/pages.md): the
 * service's tokens.verify and the redemption rules the till pack can answer, in the
 * service's order (domain/redemptions.RULE_ORDER) and with its problem codes. Token:
 * typ, alg EdDSA (pinned here, never taken from the token), kid in the pack's JWKS, the
 * Ed25519 signature by WebCrypto, the claims, expiry by this till's clock. Partner: aud.
 * Voucher: the pack's list of vouchers that can no longer be used, then those redeemed
 * offline here. Offer: in the pack and inside its window. The holder and the limits
 * cannot be checked offline: the service records such a redemption with its conflict.
 * Loaded by scan.js only when needed (the worker keeps it).
 */

import { usedHere } from "./offline.js";

const TOKEN_TYP = "yd-voucher+jwt";
const LEEWAY_SECONDS = 5; // tokens.LEEWAY_SECONDS
const MAX_TOKEN_CHARS = 2048;
const MAX_TIMESTAMP = 253402300799;
const REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "ofr", "jti"];

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
export async function check(token, pack, nowMs) {
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
