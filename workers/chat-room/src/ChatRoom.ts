import { DurableObject } from "cloudflare:workers";

/**
 * One conversation: the single writer of its message order, its sockets and
 * its presence. This first version only proves its SQLite storage answers.
 */
export class ChatRoom extends DurableObject {
	/** Readiness probe: answers once the object's own SQLite storage responds. */
	async ping(): Promise<{ ok: true }> {
		this.ctx.storage.sql.exec("SELECT 1");
		return { ok: true };
	}
}
