/**
 * Announce tokens (BEP 5): a get_peers answer carries a token that the requester must present in
 * its announce_peer, proving it receives datagrams at the IP it announces from. A token is a
 * hash of a secret and the requester's IP; the secret is replaced every 5 minutes and the
 * previous one still accepted, so a token lives 5 to 10 minutes and no per-requester state is
 * kept. Pure: the caller brings the random secrets and the rotation schedule.
 */
import { Duration } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"

/** Bytes of a token we issue. */
export const TOKEN_LENGTH = 8

/** Bytes of a secret. */
export const SECRET_LENGTH = 16

/** How often the secret is replaced (BEP 5: every five minutes). */
export const ROTATE_EVERY = Duration.minutes(5)

/** The current and the previous secret. */
export interface Secrets {
  readonly current: Uint8Array
  readonly previous: Uint8Array
}

/** Secrets starting from one fresh secret. */
export const make = (secret: Uint8Array): Secrets => ({ current: secret, previous: secret })

/** Retires the previous secret: `fresh` becomes current, the current one previous. */
export const rotate = (secrets: Secrets, fresh: Uint8Array): Secrets => ({ current: fresh, previous: secrets.current })

const tokenFor = (secret: Uint8Array, host: string): Uint8Array =>
  Uint8Array.from(createHash("sha1").update(secret).update(host, "utf8").digest().subarray(0, TOKEN_LENGTH))

/** The token for a requester at IP `host`. */
export const issue = (secrets: Secrets, host: string): Uint8Array => tokenFor(secrets.current, host)

/** Whether `token` was issued to `host` under the current or the previous secret. */
export const verify = (secrets: Secrets, host: string, token: Uint8Array): boolean =>
  token.length === TOKEN_LENGTH &&
  (timingSafeEqual(token, tokenFor(secrets.current, host)) || timingSafeEqual(token, tokenFor(secrets.previous, host)))
