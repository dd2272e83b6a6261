// Wire formats shared by the api, the Durable Objects, the media node and the SDK.
export * from "./accounts.ts";
export * from "./calls.ts";
export * from "./conversations.ts";
export * from "./errors.ts";
export * from "./files.ts";
export * from "./ids.ts";
export * from "./keys.ts";
export * from "./notifications.ts";
export * from "./realtime.ts";
export * from "./service.ts";
export * from "./signaling.ts";
export * from "./turn.ts";
