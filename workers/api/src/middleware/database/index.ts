import { createMiddleware } from "hono/factory";
import { type Database, type DatabaseHandle, openDatabase } from "../../db/client.ts";
import type { AppEnv } from "../../types.ts";

/** Gives handlers `c.var.db`, connecting only if a handler actually touches it. */
export const database = () =>
	createMiddleware<AppEnv>(async (c, next) => {
		let handle: DatabaseHandle | undefined;
		const open = () => {
			handle ??= openDatabase({
				...c.var.config.database,
				// workerd drops sockets when a request ends: expected, so only a debug line.
				onError: (error) => c.var.log.debug("database connection closed", { reason: String(error?.message ?? error) }),
			});
			return handle.db;
		};
		c.set(
			"db",
			new Proxy({} as Database, {
				get: (_target, prop) => {
					const real = open();
					const value = Reflect.get(real, prop, real);
					return typeof value === "function" ? value.bind(real) : value;
				},
			}),
		);
		try {
			await next();
		} finally {
			if (handle) {
				const closing = handle.close();
				try {
					c.executionCtx.waitUntil(closing);
				} catch {
					await closing;
				}
			}
		}
	});
