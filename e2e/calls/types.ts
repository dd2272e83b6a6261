// What the test page (browser/page.ts, bundled for Chromium) exposes as
// `globalThis.e2e`, and what the Node side (run.ts) gets back. Plain data only:
// every value crosses page.evaluate as JSON.

export interface IceServerParam {
	urls: string | string[];
	username?: string;
	credential?: string;
}

export interface JoinParams {
	url: string;
	token: string;
	iceServers: IceServerParam[];
	iceTransportPolicy?: "all" | "relay";
	displayName: string;
	/** Give the session a `rejoin` that asks the api through the Node driver (Participant.onRejoin). */
	rejoin?: boolean;
}

/** What the driver's api answers a page's rejoin with (undefined: the call is over). */
export type RejoinAnswer = { url: string; token: string; iceServers: IceServerParam[] } | undefined;

export type JoinResult = { ok: true; peerId: string } | { ok: false; code: string; message: string };

export interface PathStats {
	state: string;
	candidateType?: string;
	protocol?: string;
}

export interface PageStats {
	video: { framesDecoded: number; packetsReceived: number };
	audio: { packetsReceived: number };
	byPeer: Record<string, { framesDecoded: number; audioPacketsReceived: number }>;
	send?: PathStats;
	recv?: PathStats;
}

export interface E2eApi {
	join(params: JoinParams): Promise<JoinResult>;
	stats(): Promise<PageStats>;
	leave(): Promise<void>;
	/** Peer ids that have a tile on the page. */
	tiles(): string[];
	/** How many remote videos on the page have been playing for half a second. */
	playingVideos(): number;
	/** Peer ids with at least one open consumer. */
	remotePeers(): string[];
	/** Everything the session reported, e.g. "participantLeft usr_…", "iceError recv 401". */
	events(): string[];
	setMicrophoneMuted(muted: boolean): Promise<void>;
	/** The media node URL the session is on now (it changes when the call moves). */
	url(): string | undefined;
}
