import type { Env as ApiEnv } from "../api/src/env.ts";

declare global {
	namespace Cloudflare {
		interface Env extends ApiEnv {}
	}
}
