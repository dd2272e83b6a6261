// One participant of a call: its signaling connection (which a reconnect may
// swap), what its token allows, and its mediasoup transports, producers and
// consumers. The Room decides; the Peer holds state and closes its own
// resources.

import type { types } from "mediasoup";

import type {
	CallPermission,
	MediaSource,
	PeerInfo,
	ProducerInfo,
	RtcNotificationData,
	RtcNotificationMethod,
	TransportDirection,
} from "../../protocol/src/signaling.ts";
import type { CallClaims } from "./CallTokenVerifier.ts";
import type { RtcError } from "./errors.ts";
import type { Logger } from "./Logger.ts";

/** What a Peer needs from its signaling socket. */
export interface PeerConnection {
	readonly id: string;
	readonly logger: Logger;
	notify<M extends RtcNotificationMethod>(method: M, data: RtcNotificationData<M>): void;
	/** Sends an error frame, then closes with the error's close code. */
	fail(error: RtcError): void;
	close(code: number, reason: string): void;
}

export type TransportAppData = { peerId: string; direction: TransportDirection };
export type ProducerAppData = { peerId: string; source: MediaSource };
export type ConsumerAppData = { peerId: string; source: MediaSource };

export type PeerTransport = types.WebRtcTransport<TransportAppData>;
export type PeerProducer = types.Producer<ProducerAppData>;
export type PeerConsumer = types.Consumer<ConsumerAppData>;

export class Peer {
	readonly id: string;
	#deviceId: string | undefined;
	#displayName: string;
	#permissions: Set<CallPermission>;
	#connection: PeerConnection | undefined;
	#logger: Logger;
	/** Has sent `join` on its current connection. */
	#joined = false;
	/** Other peers know about it (peerJoined sent, participant.joined reported). */
	#announced = false;
	#rtpCapabilities: types.RtpCapabilities | undefined;
	#graceTimer: NodeJS.Timeout | undefined;
	#closed = false;
	#transports = new Map<string, PeerTransport>();
	#producers = new Map<string, PeerProducer>();
	#consumers = new Map<string, PeerConsumer>();
	/** Producer ids a consumer is being created for (so one is never consumed twice). */
	#consuming = new Set<string>();

	static create(claims: CallClaims, connection: PeerConnection, logger: Logger): Peer {
		return new Peer(claims, connection, logger);
	}

	private constructor(claims: CallClaims, connection: PeerConnection, logger: Logger) {
		this.id = claims.userId;
		this.#deviceId = claims.deviceId;
		this.#displayName = claims.userId;
		this.#permissions = new Set(claims.permissions);
		this.#connection = connection;
		this.#logger = logger;
	}

	get logger(): Logger {
		return this.#logger;
	}

	get connection(): PeerConnection | undefined {
		return this.#connection;
	}

	get joined(): boolean {
		return this.#joined && !this.#closed;
	}

	get announced(): boolean {
		return this.#announced;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get rtpCapabilities(): types.RtpCapabilities | undefined {
		return this.#rtpCapabilities;
	}

	get permissions(): CallPermission[] {
		return [...this.#permissions];
	}

	get transports(): ReadonlyMap<string, PeerTransport> {
		return this.#transports;
	}

	get producers(): ReadonlyMap<string, PeerProducer> {
		return this.#producers;
	}

	get consumers(): ReadonlyMap<string, PeerConsumer> {
		return this.#consumers;
	}

	/** The newest open receive transport: where new consumers go. */
	get recvTransport(): PeerTransport | undefined {
		let latest: PeerTransport | undefined;

		for (const transport of this.#transports.values()) {
			if (transport.appData.direction === "recv" && !transport.closed) {
				latest = transport;
			}
		}

		return latest;
	}

	can(permission: CallPermission): boolean {
		return this.#permissions.has(permission);
	}

	/** May this peer send a producer of this source? */
	canSend(source: MediaSource): boolean {
		return source === "screen" ? this.can("screen") : this.can("publish");
	}

	markJoined(rtpCapabilities: types.RtpCapabilities, displayName: string | undefined): void {
		this.#rtpCapabilities = rtpCapabilities;
		if (displayName !== undefined) {
			this.#displayName = displayName;
		}
		this.#joined = true;
	}

	markAnnounced(): void {
		this.#announced = true;
	}

	info(): PeerInfo {
		return {
			id: this.id,
			...(this.#deviceId === undefined ? {} : { deviceId: this.#deviceId }),
			displayName: this.#displayName,
			connected: this.#connection !== undefined,
			producers: this.producerInfos(),
		};
	}

	producerInfos(): ProducerInfo[] {
		return [...this.#producers.values()]
			.filter((p) => !p.closed)
			.map((p) => ({ id: p.id, kind: p.kind, source: p.appData.source, paused: p.paused }));
	}

	notify<M extends RtcNotificationMethod>(method: M, data: RtcNotificationData<M>): void {
		this.#connection?.notify(method, data);
	}

	addTransport(transport: PeerTransport): void {
		this.#transports.set(transport.id, transport);
		transport.observer.once("close", () => this.#transports.delete(transport.id));
	}

	addProducer(producer: PeerProducer): void {
		this.#producers.set(producer.id, producer);
		producer.observer.once("close", () => this.#producers.delete(producer.id));
	}

	addConsumer(consumer: PeerConsumer): void {
		this.#consumers.set(consumer.id, consumer);
		consumer.observer.once("close", () => this.#consumers.delete(consumer.id));
	}

	/** Claims the right to create a consumer for `producerId`; false if one exists or is on its way. */
	beginConsume(producerId: string): boolean {
		if (this.#consuming.has(producerId)) {
			return false;
		}
		for (const consumer of this.#consumers.values()) {
			if (consumer.producerId === producerId && !consumer.closed) {
				return false;
			}
		}
		this.#consuming.add(producerId);

		return true;
	}

	endConsume(producerId: string): void {
		this.#consuming.delete(producerId);
	}

	/**
	 * A new socket of the same user takes over: the old one is told and closed,
	 * the peer must `join` again, and its consumers (which the client rebuilds)
	 * are closed. Transports and producers stay, so media it sends keeps
	 * flowing. Producers the new token no longer allows are closed.
	 */
	replaceConnection(claims: CallClaims, connection: PeerConnection, replaced: RtcError): PeerProducer[] {
		const previous = this.#connection;

		this.#connection = connection;
		this.#joined = false;
		this.#deviceId = claims.deviceId;
		this.#permissions = new Set(claims.permissions);
		this.#logger = connection.logger;
		this.cancelGrace();
		previous?.fail(replaced);

		for (const consumer of this.#consumers.values()) {
			consumer.close();
		}
		this.#consumers.clear();
		this.#consuming.clear();

		const revoked = [...this.#producers.values()].filter((p) => !this.canSend(p.appData.source));

		for (const producer of revoked) {
			producer.close();
		}

		return revoked;
	}

	/** The socket went away: keep the place until `onExpired` (unless a new socket comes first). */
	detachConnection(graceMs: number, onExpired: () => void): void {
		this.#connection = undefined;
		this.#joined = false;
		this.cancelGrace();
		this.#graceTimer = setTimeout(() => {
			this.#graceTimer = undefined;
			onExpired();
		}, graceMs);
		this.#graceTimer.unref();
	}

	cancelGrace(): void {
		clearTimeout(this.#graceTimer);
		this.#graceTimer = undefined;
	}

	/** Closes every transport (and with them producers and consumers). Idempotent. */
	close(): void {
		if (this.#closed) {
			return;
		}
		this.#closed = true;
		this.cancelGrace();
		for (const transport of [...this.#transports.values()]) {
			transport.close();
		}
		this.#transports.clear();
		this.#producers.clear();
		this.#consumers.clear();
		this.#consuming.clear();
	}
}
