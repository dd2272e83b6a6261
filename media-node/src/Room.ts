// One call on this node: its routers, its peers and every signaling request
// they make.
//
// Routers. A call starts with one router on the least-loaded worker. Each
// joining peer is placed on a router of the call whose consumer budget
// (MEDIA_ROUTER_MAX_CONSUMERS) its arrival would not exceed; when none has
// room, the call gets a router on another worker (one router per worker per
// call) and the new peer goes there. Producers are piped (`pipeToRouter`) to
// the routers of the peers that consume them, on first use. The first router
// also hosts the call's ActiveSpeakerObserver: audio producers from other
// routers are piped to it. A worker that dies takes its routers along: the
// call ends with reason "media-failure" and clients rejoin through the api.
//
// Peers. One per user: a second socket of the same user replaces the first.
// A peer whose socket drops keeps its place (and its media) for the reconnect
// grace; then it leaves. Consumers are created by the node (paused) whenever
// a peer with a receive transport can consume another peer's producer, and
// announced with `newConsumer`. The room closes when its last peer leaves.

import type { types } from "mediasoup";
import {
	type CallEndReason,
	RTC_CLOSE_CODES,
	type RtcMethod,
	type RtcNotificationData,
	type RtcNotificationMethod,
	type RtcRequestData,
	type RtcResponseData,
} from "../../protocol/src/signaling.ts";
import type { EventSink } from "./ApiReporter.ts";
import type { CallClaims } from "./CallTokenVerifier.ts";
import type { MediaNodeConfig } from "./config.ts";
import { RtcError } from "./errors.ts";
import { recordClientIceFailure } from "./iceFailures.ts";
import type { Logger } from "./Logger.ts";
import {
	type ConsumerAppData,
	Peer,
	type PeerConnection,
	type PeerConsumer,
	type PeerProducer,
	type PeerTransport,
	type ProducerAppData,
	type TransportAppData,
} from "./Peer.ts";
import {
	DEFAULT_MEDIA_CODECS,
	INITIAL_OUTGOING_BITRATE,
	MAX_INCOMING_BITRATE,
	pipeListenInfo,
	webRtcListenInfos,
} from "./rtc.ts";
import { recordSetupFailure } from "./setupFailures.ts";
import type { WorkerPool } from "./WorkerPool.ts";

/** Streams a peer is assumed to receive from each other peer when placing it (audio + video). */
export const STREAMS_PER_PEER = 2;
export const MAX_TRANSPORTS_PER_PEER = 4;
export const MAX_PRODUCERS_PER_PEER = 4;
export const ACTIVE_SPEAKER_INTERVAL_MS = 300;

export type RoomLimits = {
	maxPeersPerCall: number;
	routerMaxConsumers: number;
	reconnectGraceMs: number;
};

export type RoomOptions = {
	callId: string;
	pool: WorkerPool;
	rtc: MediaNodeConfig["rtc"];
	limits: RoomLimits;
	events: EventSink;
	logger: Logger;
	/** Called once, when the room has closed. */
	onClose: (room: Room) => void;
};

/** A request's answer, and work to do once the answer is on the wire. */
export type RequestResult<M extends RtcMethod = RtcMethod> = {
	data: RtcResponseData<M>;
	after?: () => void;
};

export type RoomCounts = { peers: number; transports: number; producers: number; consumers: number };

type RouterSlot = {
	router: types.Router;
	webRtcServer: types.WebRtcServer | undefined;
	workerIndex: number;
	peers: Set<Peer>;
	/** Producers piped into this router, by id. */
	piped: Map<string, Promise<void>>;
};

type Handlers = { [M in RtcMethod]: (peer: Peer, data: RtcRequestData<M>) => Promise<RequestResult<M>> };

export class Room {
	#callId: string;
	#options: RoomOptions;
	#logger: Logger;
	#slots: RouterSlot[];
	#peers = new Map<string, Peer>();
	/** Which router each peer is on. */
	#placement = new Map<Peer, RouterSlot>();
	#activeSpeaker: types.ActiveSpeakerObserver;
	#dominant: { peerId: string; producerId: string } | undefined;
	#placementLock: Promise<unknown> = Promise.resolve();
	#started = false;
	#closed = false;
	#handlers: Handlers;
	/** Transports whose client reported an ICE failure since their last ICE restart (counted once). */
	#iceFailed = new WeakSet<PeerTransport>();

	static async create(options: RoomOptions): Promise<Room> {
		const allocated = await options.pool.allocateRouter({
			mediaCodecs: DEFAULT_MEDIA_CODECS,
			appData: { callId: options.callId },
		});
		let activeSpeaker: types.ActiveSpeakerObserver;

		try {
			activeSpeaker = await allocated.router.createActiveSpeakerObserver({ interval: ACTIVE_SPEAKER_INTERVAL_MS });
		} catch (error) {
			allocated.router.close();
			throw error;
		}

		return new Room(options, allocated, activeSpeaker);
	}

	private constructor(
		options: RoomOptions,
		first: { router: types.Router; webRtcServer: types.WebRtcServer | undefined; workerIndex: number },
		activeSpeaker: types.ActiveSpeakerObserver,
	) {
		this.#callId = options.callId;
		this.#options = options;
		this.#logger = options.logger.child({ component: "room", callId: options.callId });
		this.#slots = [];
		this.#activeSpeaker = activeSpeaker;
		this.#addSlot(first);
		this.#handlers = this.#buildHandlers();

		activeSpeaker.on("dominantspeaker", ({ producer }) => {
			const peerId = (producer.appData as Partial<ProducerAppData>).peerId;

			if (peerId === undefined || this.#closed) {
				return;
			}
			this.#dominant = { peerId, producerId: producer.id };
			this.#broadcast(undefined, "activeSpeaker", { peerId, producerId: producer.id });
		});

		this.#logger.info("room created", { worker: first.workerIndex });
	}

	get callId(): string {
		return this.#callId;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get peerCount(): number {
		return this.#peers.size;
	}

	get routerCount(): number {
		return this.#slots.length;
	}

	/** Worker index of each router of the call, first router first. */
	get workerIndexes(): number[] {
		return this.#slots.map((slot) => slot.workerIndex);
	}

	get rtpCapabilities(): types.RtpCapabilities {
		return this.#mainSlot().router.rtpCapabilities;
	}

	hasPeer(userId: string): boolean {
		return this.#peers.has(userId);
	}

	counts(): RoomCounts {
		const counts: RoomCounts = { peers: this.#peers.size, transports: 0, producers: 0, consumers: 0 };

		for (const peer of this.#peers.values()) {
			counts.transports += peer.transports.size;
			counts.producers += peer.producers.size;
			counts.consumers += peer.consumers.size;
		}

		return counts;
	}

	/** Every WebRTC transport of the call (for bitrate sampling). */
	*transports(): Generator<PeerTransport> {
		for (const peer of this.#peers.values()) {
			yield* peer.transports.values();
		}
	}

	/**
	 * Admits an authenticated socket. The same user again takes over its
	 * existing place; a new user needs a free place (else CALL_FULL).
	 */
	admit(claims: CallClaims, connection: PeerConnection): Peer {
		if (this.#closed) {
			throw new RtcError("SERVICE_UNAVAILABLE", "The call is closing; try again.", RTC_CLOSE_CODES.TRY_AGAIN_LATER);
		}

		const existing = this.#peers.get(claims.userId);

		if (existing) {
			const revoked = existing.replaceConnection(
				claims,
				connection,
				new RtcError("REPLACED", "Another connection of this user joined the call.", RTC_CLOSE_CODES.REPLACED),
			);

			existing.logger.info("peer reconnected", { revokedProducers: revoked.length });

			return existing;
		}

		const max = this.#options.limits.maxPeersPerCall;

		if (this.#peers.size >= max) {
			throw new RtcError(
				"CALL_FULL",
				`This call already has its maximum of ${max} participants.`,
				RTC_CLOSE_CODES.CALL_FULL,
			);
		}

		const peer = Peer.create(claims, connection, connection.logger);

		this.#peers.set(peer.id, peer);

		return peer;
	}

	/** Runs one request of `peer`. Throws RtcError (or mediasoup errors, mapped by the caller). */
	async handle(peer: Peer, method: RtcMethod, data: unknown): Promise<RequestResult> {
		if (this.#closed || peer.closed || this.#peers.get(peer.id) !== peer) {
			throw new RtcError("NOT_JOINED", "This peer is no longer in the call.");
		}
		if (!peer.joined && method !== "getRouterRtpCapabilities" && method !== "join" && method !== "leave") {
			throw new RtcError("NOT_JOINED", `Send "join" before "${method}".`);
		}

		const handler = this.#handlers[method] as (peer: Peer, data: unknown) => Promise<RequestResult>;

		return await handler(peer, data);
	}

	/** The peer's socket closed (for whatever reason other than a replacement). */
	connectionClosed(peer: Peer, connection: PeerConnection): void {
		if (peer.connection !== connection || this.#peers.get(peer.id) !== peer) {
			return;
		}

		const grace = this.#options.limits.reconnectGraceMs;

		if (!peer.announced || grace === 0 || this.#closed) {
			this.removePeer(peer, "disconnected");

			return;
		}

		peer.detachConnection(grace, () => this.removePeer(peer, "reconnect grace expired"));
		peer.logger.info("peer disconnected; keeping its place", { graceMs: grace });
	}

	/** Takes a peer out of the call (left, timed out). The room closes after its last peer. */
	removePeer(peer: Peer, reason: string): void {
		if (this.#peers.get(peer.id) !== peer) {
			return;
		}

		this.#peers.delete(peer.id);
		peer.close();

		const slot = this.#placement.get(peer);

		this.#placement.delete(peer);
		slot?.peers.delete(peer);

		if (peer.announced) {
			this.#broadcast(peer, "peerLeft", { peerId: peer.id });
			this.#options.events.emit("participant.left", this.#callId, peer.id);
			peer.logger.info("peer left", { reason, peers: this.#peers.size });
		}
		if (this.#dominant?.peerId === peer.id) {
			this.#dominant = undefined;
			this.#broadcast(undefined, "activeSpeaker", { peerId: null, producerId: null });
		}
		if (slot && slot !== this.#mainSlot() && slot.peers.size === 0) {
			this.#removeSlot(slot);
		}
		if (this.#peers.size === 0) {
			this.close("ended");
		}
	}

	/** Ends the call: peers are told why and disconnected, routers closed. Idempotent. */
	close(reason: CallEndReason): void {
		if (this.#closed) {
			return;
		}
		this.#closed = true;

		const closeCode = reason === "node-shutdown" ? RTC_CLOSE_CODES.GOING_AWAY : RTC_CLOSE_CODES.CALL_ENDED;

		for (const peer of this.#peers.values()) {
			const connection = peer.connection;

			peer.close();
			if (connection) {
				connection.notify("callEnded", { reason });
				connection.close(closeCode, `call ended: ${reason}`);
			}
			if (peer.announced) {
				this.#options.events.emit("participant.left", this.#callId, peer.id);
			}
		}
		this.#peers.clear();
		this.#placement.clear();

		for (const slot of this.#slots) {
			slot.router.close();
		}
		this.#slots = [];

		if (this.#started) {
			this.#options.events.emit("call.ended", this.#callId);
		}
		this.#logger.info("room closed", { reason });
		this.#options.onClose(this);
	}

	/** Tells every connected peer the node is draining. */
	notifyDraining(deadline: Date, timeoutMs: number): void {
		this.#broadcast(undefined, "nodeDraining", { deadline: deadline.toISOString(), timeoutMs }, { joinedOnly: false });
	}

	// --- request handlers ---------------------------------------------------

	#buildHandlers(): Handlers {
		return {
			getRouterRtpCapabilities: async () => ({ data: { rtpCapabilities: this.rtpCapabilities } }),
			join: (peer, data) => this.#join(peer, data),
			leave: async (peer) => ({
				data: {},
				after: () => {
					const connection = peer.connection;

					this.removePeer(peer, "left");
					connection?.close(RTC_CLOSE_CODES.NORMAL, "left");
				},
			}),
			createWebRtcTransport: (peer, data) => this.#createTransport(peer, data),
			connectWebRtcTransport: async (peer, { transportId, dtlsParameters }) => {
				const transport = this.#transportOf(peer, transportId);

				if (transport.dtlsState !== "new") {
					throw new RtcError("CONFLICT", "This transport is already connected.");
				}
				await transport.connect({ dtlsParameters });

				return { data: {} };
			},
			restartIce: async (peer, { transportId }) => {
				const transport = this.#transportOf(peer, transportId);

				this.#iceFailed.delete(transport);

				return { data: { iceParameters: await transport.restartIce() } };
			},
			reportIceFailure: async (peer, { transportId, relay }) => {
				const transport = this.#transportOf(peer, transportId);

				if (!this.#iceFailed.has(transport)) {
					this.#iceFailed.add(transport);
					recordClientIceFailure(relay);
					peer.logger.warn("client reports ICE failure", {
						transportId,
						direction: transport.appData.direction,
						relay,
						iceState: transport.iceState,
					});
				}

				return { data: {} };
			},
			closeTransport: async (peer, { transportId }) => {
				this.#transportOf(peer, transportId).close();

				return { data: {} };
			},
			produce: (peer, data) => this.#produce(peer, data),
			closeProducer: async (peer, { producerId }) => {
				this.#producerOf(peer, producerId).close();

				return { data: {} };
			},
			pauseProducer: async (peer, { producerId }) => {
				const producer = this.#producerOf(peer, producerId);

				await producer.pause();

				return {
					data: {},
					after: () =>
						this.#broadcast(peer, "producerPaused", {
							peerId: peer.id,
							producerId,
							source: producer.appData.source,
						}),
				};
			},
			resumeProducer: async (peer, { producerId }) => {
				const producer = this.#producerOf(peer, producerId);

				await producer.resume();

				return {
					data: {},
					after: () =>
						this.#broadcast(peer, "producerResumed", {
							peerId: peer.id,
							producerId,
							source: producer.appData.source,
						}),
				};
			},
			pauseConsumer: async (peer, { consumerId }) => {
				await this.#consumerOf(peer, consumerId).pause();

				return { data: {} };
			},
			resumeConsumer: async (peer, { consumerId }) => {
				await this.#consumerOf(peer, consumerId).resume();

				return { data: {} };
			},
			setConsumerPreferredLayers: async (peer, { consumerId, spatialLayer, temporalLayer }) => {
				const consumer = this.#consumerOf(peer, consumerId);

				if (consumer.type !== "simulcast" && consumer.type !== "svc") {
					throw new RtcError("BAD_REQUEST", "Only simulcast and SVC consumers have layers.");
				}
				await consumer.setPreferredLayers(
					temporalLayer === undefined ? { spatialLayer } : { spatialLayer, temporalLayer },
				);

				return { data: {} };
			},
			requestConsumerKeyFrame: async (peer, { consumerId }) => {
				const consumer = this.#consumerOf(peer, consumerId);

				if (consumer.kind !== "video") {
					throw new RtcError("BAD_REQUEST", "Only video consumers have key frames.");
				}
				await consumer.requestKeyFrame();

				return { data: {} };
			},
		};
	}

	async #join(peer: Peer, data: RtcRequestData<"join">): Promise<RequestResult<"join">> {
		if (peer.joined) {
			throw new RtcError("CONFLICT", "Already joined.");
		}

		const slot = this.#placement.get(peer) ?? (await this.#place(peer));

		if (this.#closed || peer.closed) {
			throw new RtcError("NOT_JOINED", "The call ended while joining.");
		}

		const resumed = peer.announced;

		peer.markJoined(data.rtpCapabilities as types.RtpCapabilities, data.displayName);

		const peers = [...this.#peers.values()].filter((p) => p !== peer && p.announced).map((p) => p.info());
		const transports = [...peer.transports.values()].map((t) => ({ id: t.id, direction: t.appData.direction }));

		if (!resumed) {
			peer.markAnnounced();
			this.#broadcast(peer, "peerJoined", { peer: peer.info() });
			if (!this.#started) {
				this.#started = true;
				this.#options.events.emit("call.started", this.#callId);
			}
			this.#options.events.emit("participant.joined", this.#callId, peer.id);
		}

		peer.logger.info(resumed ? "peer rejoined" : "peer joined", {
			peers: this.#peers.size,
			worker: slot.workerIndex,
			routers: this.#slots.length,
		});

		return {
			data: { peerId: peer.id, peers, resumed, transports, producers: peer.producerInfos() },
			after: () => this.#consumeAll(peer),
		};
	}

	async #createTransport(
		peer: Peer,
		{ direction, sctpCapabilities }: RtcRequestData<"createWebRtcTransport">,
	): Promise<RequestResult<"createWebRtcTransport">> {
		if (direction === "send" && !peer.can("publish") && !peer.can("screen")) {
			throw new RtcError("FORBIDDEN", "This call token does not allow sending media.");
		}
		if (direction === "recv" && !peer.can("subscribe")) {
			throw new RtcError("FORBIDDEN", "This call token does not allow receiving media.");
		}
		if (peer.transports.size >= MAX_TRANSPORTS_PER_PEER) {
			throw new RtcError("CONFLICT", `At most ${MAX_TRANSPORTS_PER_PEER} transports per peer; close one first.`);
		}

		const slot = this.#slotOf(peer);
		const appData: TransportAppData = { peerId: peer.id, direction };
		const common = {
			enableUdp: true,
			enableTcp: true,
			preferUdp: true,
			initialAvailableOutgoingBitrate: INITIAL_OUTGOING_BITRATE,
			enableSctp: sctpCapabilities !== undefined,
			...(sctpCapabilities === undefined ? {} : { numSctpStreams: sctpCapabilities.numStreams }),
			appData,
		};
		const transport = (
			slot.webRtcServer
				? await slot.router.createWebRtcTransport({ ...common, webRtcServer: slot.webRtcServer })
				: await slot.router.createWebRtcTransport({ ...common, listenInfos: webRtcListenInfos(this.#options.rtc) })
		) as PeerTransport;

		if (this.#closed || peer.closed) {
			transport.close();
			throw new RtcError("NOT_JOINED", "The peer left while its transport was being created.");
		}

		peer.addTransport(transport);
		transport.on("dtlsstatechange", (state) => {
			if (state === "failed" || state === "closed") {
				peer.logger.warn("transport DTLS state", { transportId: transport.id, state });
			}
			if (state === "failed") recordSetupFailure("dtls_failed");
		});
		transport.on("icestatechange", (state) => {
			peer.logger.debug("transport ICE state", { transportId: transport.id, state });
		});

		if (direction === "send") {
			await transport.setMaxIncomingBitrate(MAX_INCOMING_BITRATE).catch(() => {});
		}

		return {
			data: {
				id: transport.id,
				iceParameters: transport.iceParameters,
				iceCandidates: transport.iceCandidates,
				dtlsParameters: transport.dtlsParameters,
				...(transport.sctpParameters ? { sctpParameters: transport.sctpParameters } : {}),
			},
			after: direction === "recv" ? () => this.#consumeAll(peer) : undefined,
		};
	}

	async #produce(peer: Peer, data: RtcRequestData<"produce">): Promise<RequestResult<"produce">> {
		const { kind, appData, transportId } = data;
		const { source } = appData;

		if (!peer.canSend(source)) {
			throw new RtcError(
				"FORBIDDEN",
				source === "screen"
					? "This call token does not allow screen sharing."
					: "This call token does not allow publishing.",
			);
		}
		if ((source === "mic" && kind !== "audio") || (source === "camera" && kind !== "video")) {
			throw new RtcError("BAD_REQUEST", `A "${source}" producer must be ${source === "mic" ? "audio" : "video"}.`);
		}

		const transport = this.#transportOf(peer, transportId);

		if (transport.appData.direction !== "send") {
			throw new RtcError("BAD_REQUEST", "Produce on a send transport.");
		}

		const producers = [...peer.producers.values()].filter((p) => !p.closed);

		if (producers.some((p) => p.appData.source === source && p.kind === kind)) {
			throw new RtcError("CONFLICT", `This peer already sends ${kind} from "${source}"; close it first.`);
		}
		if (producers.length >= MAX_PRODUCERS_PER_PEER) {
			throw new RtcError("CONFLICT", `At most ${MAX_PRODUCERS_PER_PEER} producers per peer.`);
		}

		const producerAppData: ProducerAppData = { peerId: peer.id, source };
		const producer = (await transport.produce({
			kind,
			rtpParameters: data.rtpParameters as types.RtpParameters,
			paused: data.paused ?? false,
			appData: producerAppData,
		})) as PeerProducer;

		if (this.#closed || peer.closed) {
			producer.close();
			throw new RtcError("NOT_JOINED", "The peer left while producing.");
		}

		peer.addProducer(producer);
		producer.observer.once("close", () => {
			for (const slot of this.#slots) {
				slot.piped.delete(producer.id);
			}
		});
		peer.logger.info("producer created", { producerId: producer.id, kind, source, type: producer.type });

		return {
			data: { id: producer.id },
			after: () => {
				if (kind === "audio") {
					void this.#observeSpeaker(peer, producer);
				}
				for (const other of this.#peers.values()) {
					if (other !== peer) {
						void this.#consume(other, peer, producer);
					}
				}
			},
		};
	}

	// --- consumers, pipes, speakers ---------------------------------------------

	/** Consumers for every producer of the other peers (after join or a new recv transport). */
	#consumeAll(peer: Peer): void {
		for (const other of this.#peers.values()) {
			if (other === peer) {
				continue;
			}
			for (const producer of other.producers.values()) {
				void this.#consume(peer, other, producer);
			}
		}
	}

	async #consume(consumerPeer: Peer, producerPeer: Peer, producer: PeerProducer): Promise<void> {
		const rtpCapabilities = consumerPeer.rtpCapabilities;
		const transport = consumerPeer.recvTransport;
		const slot = this.#placement.get(consumerPeer);
		const producerSlot = this.#placement.get(producerPeer);

		if (
			this.#closed ||
			producer.closed ||
			!consumerPeer.joined ||
			!consumerPeer.can("subscribe") ||
			!rtpCapabilities ||
			!transport ||
			!slot ||
			!producerSlot ||
			!consumerPeer.beginConsume(producer.id)
		) {
			return;
		}

		let consumer: PeerConsumer;

		try {
			await this.#pipe(producer.id, producerSlot, slot);

			if (!slot.router.canConsume({ producerId: producer.id, rtpCapabilities })) {
				consumerPeer.logger.debug("cannot consume producer with these capabilities", { producerId: producer.id });

				return;
			}

			const appData: ConsumerAppData = { peerId: producerPeer.id, source: producer.appData.source };

			consumer = (await transport.consume({
				producerId: producer.id,
				rtpCapabilities,
				paused: true,
				appData,
			})) as PeerConsumer;
		} catch (error) {
			if (!producer.closed && !transport.closed && !this.#closed) {
				consumerPeer.logger.warn("cannot create consumer", { producerId: producer.id, error });
			}

			return;
		} finally {
			consumerPeer.endConsume(producer.id);
		}

		// The peer may have left, reconnected or closed the transport meanwhile.
		if (!consumerPeer.joined || transport.closed || consumerPeer.closed) {
			consumer.close();

			return;
		}

		consumerPeer.addConsumer(consumer);

		const connection = consumerPeer.connection;
		const notify = <M extends RtcNotificationMethod>(method: M, data: RtcNotificationData<M>): void => {
			// Only the socket the consumer was announced on knows it.
			if (consumerPeer.connection === connection) {
				consumerPeer.notify(method, data);
			}
		};

		consumer.on("producerclose", () => {
			consumer.close();
			notify("consumerClosed", { consumerId: consumer.id });
		});
		consumer.on("producerpause", () => notify("consumerPaused", { consumerId: consumer.id }));
		consumer.on("producerresume", () => notify("consumerResumed", { consumerId: consumer.id }));
		consumer.on("layerschange", (layers) =>
			notify("consumerLayersChanged", {
				consumerId: consumer.id,
				spatialLayer: layers?.spatialLayer ?? null,
				temporalLayer: layers?.temporalLayer ?? null,
			}),
		);

		notify("newConsumer", {
			id: consumer.id,
			peerId: producerPeer.id,
			producerId: producer.id,
			kind: consumer.kind,
			rtpParameters: consumer.rtpParameters,
			type: consumer.type,
			appData: { source: producer.appData.source },
			producerPaused: consumer.producerPaused,
		});
	}

	/** Makes `producerId` (living on `from`) available on `to`, once. */
	async #pipe(producerId: string, from: RouterSlot, to: RouterSlot): Promise<void> {
		if (from === to) {
			return;
		}

		let piped = to.piped.get(producerId);

		if (!piped) {
			piped = from.router
				.pipeToRouter({
					producerId,
					router: to.router,
					listenInfo: pipeListenInfo(this.#options.rtc),
					enableSctp: false,
				})
				.then(() => {});
			to.piped.set(producerId, piped);
			piped.catch(() => {
				if (to.piped.get(producerId) === piped) {
					to.piped.delete(producerId);
				}
			});
		}

		await piped;
	}

	async #observeSpeaker(peer: Peer, producer: PeerProducer): Promise<void> {
		const from = this.#placement.get(peer);

		if (!from || this.#closed) {
			return;
		}
		try {
			await this.#pipe(producer.id, from, this.#mainSlot());
			if (!producer.closed && !this.#closed) {
				await this.#activeSpeaker.addProducer({ producerId: producer.id });
			}
		} catch (error) {
			if (!producer.closed && !this.#closed) {
				peer.logger.warn("cannot observe audio producer", { producerId: producer.id, error });
			}
		}
	}

	// --- routers -----------------------------------------------------------------

	/** Chooses (or creates) the router a joining peer goes on. Serialized per room. */
	async #place(peer: Peer): Promise<RouterSlot> {
		const run = this.#placementLock.then(() => this.#placeNow(peer));

		this.#placementLock = run.catch(() => {});

		return await run;
	}

	async #placeNow(peer: Peer): Promise<RouterSlot> {
		const placed = this.#placement.get(peer);

		if (placed) {
			return placed;
		}

		const budget = this.#options.limits.routerMaxConsumers;
		const others = [...this.#placement.keys()].filter((p) => p !== peer).length;
		const estimate = (slot: RouterSlot): number => {
			let actual = 0;

			for (const p of slot.peers) {
				actual += p.consumers.size;
			}

			return Math.max(actual + others * STREAMS_PER_PEER, (slot.peers.size + 1) * others * STREAMS_PER_PEER);
		};

		let chosen = this.#slots.find((slot) => estimate(slot) <= budget);

		if (!chosen) {
			const used = new Set(this.#slots.map((slot) => slot.workerIndex));

			if (this.#options.pool.hasLiveWorkerOutside(used)) {
				try {
					const allocated = await this.#options.pool.allocateRouter(
						{ mediaCodecs: DEFAULT_MEDIA_CODECS, appData: { callId: this.#callId } },
						{ avoid: used, strict: true },
					);

					if (this.#closed) {
						allocated.router.close();
						throw new RtcError("NOT_JOINED", "The call ended while joining.");
					}
					chosen = this.#addSlot(allocated);
					this.#logger.info("call spread to another worker", {
						worker: allocated.workerIndex,
						routers: this.#slots.length,
					});
				} catch (error) {
					if (error instanceof RtcError) {
						throw error;
					}
					this.#logger.warn("cannot add a router; overfilling an existing one", { error });
				}
			}
		}

		if (!chosen) {
			chosen = this.#slots.reduce((best, slot) => (estimate(slot) < estimate(best) ? slot : best));
		}

		if (this.#closed || peer.closed) {
			throw new RtcError("NOT_JOINED", "The call ended while joining.");
		}

		this.#placement.set(peer, chosen);
		chosen.peers.add(peer);

		return chosen;
	}

	#addSlot(allocated: {
		router: types.Router;
		webRtcServer: types.WebRtcServer | undefined;
		workerIndex: number;
	}): RouterSlot {
		const slot: RouterSlot = { ...allocated, peers: new Set(), piped: new Map() };

		this.#slots.push(slot);
		allocated.router.on("workerclose", () => {
			this.#logger.error("mediasoup worker of this call died", { worker: allocated.workerIndex });
			this.close("media-failure");
		});

		return slot;
	}

	#removeSlot(slot: RouterSlot): void {
		this.#slots = this.#slots.filter((s) => s !== slot);
		slot.router.close();
		this.#logger.info("router of an emptied worker closed", {
			worker: slot.workerIndex,
			routers: this.#slots.length,
		});
	}

	#mainSlot(): RouterSlot {
		const slot = this.#slots[0];

		if (!slot) {
			throw new RtcError("SERVICE_UNAVAILABLE", "The call has no router.", RTC_CLOSE_CODES.TRY_AGAIN_LATER);
		}

		return slot;
	}

	#slotOf(peer: Peer): RouterSlot {
		const slot = this.#placement.get(peer);

		if (!slot) {
			throw new RtcError("NOT_JOINED", 'Send "join" first.');
		}

		return slot;
	}

	// --- lookups and fan-out -------------------------------------------------------

	#transportOf(peer: Peer, id: string): PeerTransport {
		const transport = peer.transports.get(id);

		if (!transport || transport.closed) {
			throw new RtcError("NOT_FOUND", "No such transport.");
		}

		return transport;
	}

	#producerOf(peer: Peer, id: string): PeerProducer {
		const producer = peer.producers.get(id);

		if (!producer || producer.closed) {
			throw new RtcError("NOT_FOUND", "No such producer.");
		}

		return producer;
	}

	#consumerOf(peer: Peer, id: string): PeerConsumer {
		const consumer = peer.consumers.get(id);

		if (!consumer || consumer.closed) {
			throw new RtcError("NOT_FOUND", "No such consumer.");
		}

		return consumer;
	}

	/** Notifies every joined peer except `except` (all connected peers with joinedOnly false). */
	#broadcast<M extends RtcNotificationMethod>(
		except: Peer | undefined,
		method: M,
		data: RtcNotificationData<M>,
		{ joinedOnly = true }: { joinedOnly?: boolean } = {},
	): void {
		for (const peer of this.#peers.values()) {
			if (peer !== except && (peer.joined || !joinedOnly)) {
				peer.notify(method, data);
			}
		}
	}
}
