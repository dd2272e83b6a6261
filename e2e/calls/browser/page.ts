// The call test page: one CallSession from the SDK, a tile per remote
// participant (video + audio), and `globalThis.e2e` for the Node driver.
import { CallError, CallSession, type RemoteTrack } from "../../../sdk/src/index.ts";
import type { E2eApi, JoinParams, JoinResult, PageStats, RejoinAnswer } from "../types.ts";

let session: CallSession | undefined;
const log: string[] = [];
const tiles = document.getElementById("tiles") as HTMLDivElement;
const status = document.getElementById("status") as HTMLElement;

function tileOf(peerId: string, displayName = peerId): HTMLDivElement {
	let tile = tiles.querySelector<HTMLDivElement>(`[data-peer="${CSS.escape(peerId)}"]`);
	if (!tile) {
		tile = document.createElement("div");
		tile.className = "tile";
		tile.dataset.peer = peerId;
		const label = document.createElement("span");
		label.textContent = displayName;
		tile.append(label);
		tiles.append(tile);
	}
	return tile;
}

function attach(remote: RemoteTrack): void {
	const element = document.createElement(remote.kind === "video" ? "video" : "audio");
	element.dataset.consumer = remote.consumerId;
	element.autoplay = true;
	if (element instanceof HTMLVideoElement) {
		element.muted = true;
		element.playsInline = true;
	}
	element.srcObject = new MediaStream([remote.track]);
	tileOf(remote.peerId).prepend(element);
}

async function join(params: JoinParams): Promise<JoinResult> {
	try {
		const { rejoin, ...join } = params;
		const driver = globalThis as unknown as { e2eRejoin?: () => Promise<RejoinAnswer> };
		session = await CallSession.join({
			...join,
			...(rejoin && driver.e2eRejoin && { rejoin: driver.e2eRejoin }),
			publish: { audio: true, video: { width: 320, height: 240, frameRate: 15 } },
			simulcast: [
				{ scaleResolutionDownBy: 2, maxBitrate: 100_000 },
				{ scaleResolutionDownBy: 1, maxBitrate: 300_000 },
			],
			on: {
				participantJoined: ({ participant }) => {
					log.push(`participantJoined ${participant.id}`);
					tileOf(participant.id, participant.displayName);
				},
				participantLeft: ({ peerId }) => {
					log.push(`participantLeft ${peerId}`);
					tiles.querySelector(`[data-peer="${CSS.escape(peerId)}"]`)?.remove();
				},
				trackAdded: (remote) => {
					log.push(`trackAdded ${remote.peerId} ${remote.source}`);
					attach(remote);
				},
				trackRemoved: (remote) => {
					log.push(`trackRemoved ${remote.peerId} ${remote.source}`);
					tiles.querySelector(`[data-consumer="${CSS.escape(remote.consumerId)}"]`)?.remove();
				},
				activeSpeaker: ({ peerId }) => {
					for (const tile of tiles.querySelectorAll<HTMLElement>(".tile")) {
						tile.classList.toggle("speaking", tile.dataset.peer === peerId);
					}
				},
				muteChanged: ({ peerId, source, muted }) => log.push(`muteChanged ${peerId} ${source} ${muted}`),
				iceError: ({ direction, errorCode }) => log.push(`iceError ${direction} ${errorCode}`),
				connectionStateChanged: ({ direction, state }) => log.push(`connection ${direction} ${state}`),
				ended: ({ reason }) => log.push(`ended ${reason}`),
				reconnecting: ({ reason }) => log.push(`reconnecting ${reason}`),
				reconnected: ({ url, moved, resumed }) => log.push(`reconnected ${url} moved=${moved} resumed=${resumed}`),
			},
		});
		status.textContent = `${params.displayName} in call ${session.callId}`;
		return { ok: true, peerId: session.peerId };
	} catch (error) {
		const code = error instanceof CallError ? error.code : "ERROR";
		status.textContent = `${params.displayName} refused: ${code} ${(error as Error).message}`;
		return { ok: false, code, message: (error as Error).message };
	}
}

const api: E2eApi = {
	join,
	stats: async (): Promise<PageStats> => {
		if (!session) throw new Error("not in a call");
		const { video, audio, byPeer, send, recv } = await session.getStats();
		return { video, audio, byPeer, ...(send && { send }), ...(recv && { recv }) };
	},
	leave: async () => {
		await session?.leave();
		session = undefined;
		tiles.replaceChildren();
		status.textContent = "not in a call";
	},
	tiles: () => [...tiles.querySelectorAll<HTMLElement>(".tile")].map((t) => t.dataset.peer ?? ""),
	playingVideos: () =>
		[...tiles.querySelectorAll("video")].filter(
			(v) => v.readyState >= v.HAVE_ENOUGH_DATA && v.videoWidth > 0 && v.currentTime > 0.5,
		).length,
	remotePeers: () => [...new Set(session?.remoteTracks.map((t) => t.peerId))],
	events: () => [...log],
	setMicrophoneMuted: async (muted) => {
		await session?.setMicrophoneMuted(muted);
	},
	url: () => session?.url,
};
(globalThis as unknown as { e2e: E2eApi }).e2e = api;
