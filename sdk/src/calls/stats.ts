// Small readers of WebRTC stats reports: what a call UI (or a test) wants to
// know, i.e. whether media arrives per participant and which ICE path is used.
import type { MediaKind, MediaSource } from "@secureconnect/protocol";

export interface InboundStats {
	consumerId: string;
	peerId: string;
	source: MediaSource;
	kind: MediaKind;
	packetsReceived: number;
	bytesReceived: number;
	/** Video only (0 for audio). */
	framesDecoded: number;
}

export interface TransportStats {
	state: string;
	/** Local side of the selected ICE candidate pair: "relay" means through TURN. */
	candidateType?: string;
	protocol?: string;
}

export interface CallStats {
	inbound: InboundStats[];
	/** Sums over all inbound streams. */
	video: { framesDecoded: number; packetsReceived: number };
	audio: { packetsReceived: number };
	/** Per remote participant: decoded video frames and received audio packets. */
	byPeer: Record<string, { framesDecoded: number; audioPacketsReceived: number }>;
	send?: TransportStats;
	recv?: TransportStats;
}

type Stat = Record<string, unknown>;

const num = (value: unknown) => (typeof value === "number" ? value : 0);

/** The inbound-rtp entry of one consumer's (receiver's) report. */
export function inboundOf(report: RTCStatsReport): {
	packetsReceived: number;
	bytesReceived: number;
	framesDecoded: number;
} {
	const out = { packetsReceived: 0, bytesReceived: 0, framesDecoded: 0 };
	report.forEach((stat: Stat) => {
		if (stat.type !== "inbound-rtp") return;
		out.packetsReceived += num(stat.packetsReceived);
		out.bytesReceived += num(stat.bytesReceived);
		out.framesDecoded += num(stat.framesDecoded);
	});
	return out;
}

/** The selected candidate pair's local candidate in a transport's (peer connection's) report. */
export function selectedPath(report: RTCStatsReport): { candidateType?: string; protocol?: string } {
	const stats = new Map<string, Stat>();
	report.forEach((stat: Stat, id: string) => {
		stats.set(id, stat);
	});
	let pair: Stat | undefined;
	for (const stat of stats.values()) {
		if (stat.type === "transport" && typeof stat.selectedCandidatePairId === "string") {
			pair = stats.get(stat.selectedCandidatePairId);
		}
	}
	pair ??= [...stats.values()].find((s) => s.type === "candidate-pair" && s.state === "succeeded" && s.nominated);
	const local = pair && typeof pair.localCandidateId === "string" ? stats.get(pair.localCandidateId) : undefined;
	if (!local) return {};
	return {
		...(typeof local.candidateType === "string" && { candidateType: local.candidateType }),
		...(typeof local.protocol === "string" && { protocol: local.protocol }),
	};
}

export function summarize(inbound: InboundStats[]): Omit<CallStats, "send" | "recv"> {
	const stats: Omit<CallStats, "send" | "recv"> = {
		inbound,
		video: { framesDecoded: 0, packetsReceived: 0 },
		audio: { packetsReceived: 0 },
		byPeer: {},
	};
	for (const s of inbound) {
		const peer = stats.byPeer[s.peerId] ?? { framesDecoded: 0, audioPacketsReceived: 0 };
		stats.byPeer[s.peerId] = peer;
		if (s.kind === "video") {
			stats.video.framesDecoded += s.framesDecoded;
			stats.video.packetsReceived += s.packetsReceived;
			peer.framesDecoded += s.framesDecoded;
		} else {
			stats.audio.packetsReceived += s.packetsReceived;
			peer.audioPacketsReceived += s.packetsReceived;
		}
	}
	return stats;
}
