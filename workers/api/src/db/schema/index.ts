// The system of record in Postgres, one file per domain. Constraints live in
// the database, not only in code.
export * from "./accounts.ts";
export * from "./calls.ts";
export * from "./conversations.ts";
export * from "./files.ts";
export * from "./keys.ts";
export * from "./push.ts";
