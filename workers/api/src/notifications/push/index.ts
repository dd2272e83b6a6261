// Sends one payload to a set of subscriptions of one kind through its provider.
import type { PushKind } from "@secureconnect/protocol";
import type { pushSubscriptions } from "../../db/schema/index.ts";
import type { PushConfig } from "../config.ts";
import { ApnsClient, type ApnsTransport } from "./apns.ts";
import { FcmClient } from "./fcm.ts";
import type { DeliveryOutcome, PushPayload } from "./types.ts";
import { WebPushClient } from "./webpush.ts";

export type SubscriptionRow = typeof pushSubscriptions.$inferSelect;

export interface PushDispatcherOptions {
	/** Replaces the APNs transport the configuration names (tests). */
	apnsTransport?: ApnsTransport;
}

export class PushDispatcher {
	readonly #config: PushConfig;
	readonly #fcm: FcmClient | undefined;
	readonly #apns: ApnsClient | undefined;
	readonly #webpush: WebPushClient | undefined;

	constructor(config: PushConfig, options: PushDispatcherOptions = {}) {
		this.#config = config;
		this.#fcm = config.fcm && new FcmClient(config.fcm, config.timeoutMs);
		this.#apns = config.apns && new ApnsClient(config.apns, config.timeoutMs, options.apnsTransport);
		this.#webpush = config.webpush && new WebPushClient(config.webpush, config.timeoutMs);
	}

	configured(kind: PushKind): boolean {
		return Boolean(kind === "fcm" ? this.#config.fcm : kind === "apns" ? this.#config.apns : this.#config.webpush);
	}

	async send(kind: PushKind, subs: SubscriptionRow[], payload: PushPayload): Promise<DeliveryOutcome[]> {
		if (subs.length === 0) return [];
		const notConfigured = () =>
			subs.map((): DeliveryOutcome => ({ status: "rejected", reason: `${kind} is not configured` }));
		switch (kind) {
			case "fcm":
				return this.#fcm
					? this.#fcm.send(
							subs.map((s) => s.token ?? ""),
							payload,
						)
					: notConfigured();
			case "apns":
				return this.#apns
					? this.#apns.send(
							subs.map((s) => s.token ?? ""),
							payload,
						)
					: notConfigured();
			case "webpush":
				return this.#webpush
					? this.#webpush.send(
							subs.map((s) => s.subscription ?? { endpoint: "", keys: { p256dh: "", auth: "" } }),
							payload,
						)
					: notConfigured();
		}
	}
}
