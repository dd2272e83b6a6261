import { createApp } from "./app.ts";
import { reportStaleNodes } from "./calls/node-watch.ts";
import type { Env } from "./env.ts";
import { sweepExpiredUploads } from "./files/cleanup.ts";
import { rootLogger } from "./lib/logger.ts";
import {
	consumeDeadLetters,
	consumeNotifications,
	isDeadLetterQueue,
	type NotificationJob,
	sweepOutbox,
} from "./notifications/consumer.ts";

export { ChatRoom } from "../../chat-room/src/ChatRoom.ts";
export { UserChannel } from "../../chat-room/src/UserChannel.ts";
export { RateLimiter } from "./rate-limit/RateLimiter.ts";

const app = createApp();

export default {
	fetch: app.fetch,
	queue: (batch, env) =>
		isDeadLetterQueue(batch.queue) ? consumeDeadLetters(batch, env) : consumeNotifications(batch, env),
	scheduled: async (_controller, env, ctx) => {
		ctx.waitUntil(
			sweepOutbox(env).then(
				(count) => count > 0 && rootLogger.info("outbox sweep re-enqueued emails", { count }),
				(error: unknown) => rootLogger.error("outbox sweep failed", { error }),
			),
		);
		ctx.waitUntil(sweepExpiredUploads(env));
		ctx.waitUntil(reportStaleNodes(env).catch((error: unknown) => rootLogger.error("node watch failed", { error })));
	},
} satisfies ExportedHandler<Env, NotificationJob>;
