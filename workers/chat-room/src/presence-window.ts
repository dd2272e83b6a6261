/**
 * Presence changes wait this long to go out together. When N members come
 * online at once (a reconnect storm after a deploy or a network blip), one
 * broadcast each costs N² sends; together, each socket gets one frame per
 * window where it selected batches.
 */
export const PRESENCE_COALESCE_MS = 50;
/**
 * Each announcement is a frame to every socket, so in a big room the window
 * grows with its sockets: up to PRESENCE_COALESCE_MAX_MS, a storm of changes
 * then costs at most 1 / PRESENCE_COALESCE_MS_PER_SOCKET sends per ms,
 * whatever the room's size.
 */
export const PRESENCE_COALESCE_MS_PER_SOCKET = 0.5;
export const PRESENCE_COALESCE_MAX_MS = 500;

/** How long presence changes wait to go out together in a room with this many sockets. */
export function presenceWindowMs(sockets: number): number {
	return Math.min(PRESENCE_COALESCE_MAX_MS, Math.max(PRESENCE_COALESCE_MS, sockets * PRESENCE_COALESCE_MS_PER_SOCKET));
}
