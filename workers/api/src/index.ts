import { createApp } from "./app.ts";
import type { Env } from "./env.ts";

export { ChatRoom } from "../../chat-room/src/ChatRoom.ts";

const app = createApp();

export default {
	fetch: app.fetch,
} satisfies ExportedHandler<Env>;
