// The device's MLS side: its signature key (the credential the server binds to
// the user), its KeyPackages and its groups. Everything secret stays here.
import {
	acceptAll,
	type CiphersuiteImpl,
	type ClientState,
	type Credential,
	createApplicationMessage,
	createCommit,
	createGroup,
	decodeMlsMessage,
	defaultCapabilities,
	defaultLifetime,
	emptyPskIndex,
	encodeMlsMessage,
	generateKeyPackageWithKey,
	getCiphersuiteFromName,
	getCiphersuiteImpl,
	joinGroup,
	type KeyPackage,
	type PrivateKeyPackage,
	type Proposal,
	processMessage,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { fromBase64, toBase64, toHex, utf8 } from "./encoding.ts";

export const CIPHERSUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519";

export interface CommitOutput {
	commit: string;
	welcome: string | undefined;
	/** The state to keep once the Delivery Service has accepted the commit. */
	next: ClientState;
}

export type Processed =
	| { kind: "application"; plaintext: Uint8Array; state: ClientState }
	| { kind: "handshake"; state: ClientState };

export class MlsDevice {
	readonly impl: CiphersuiteImpl;
	readonly #signature: { signKey: Uint8Array; publicKey: Uint8Array };
	readonly #packages = new Map<string, { publicPackage: KeyPackage; privatePackage: PrivateKeyPackage }>();
	#identity: Uint8Array = new Uint8Array();

	private constructor(impl: CiphersuiteImpl, signature: { signKey: Uint8Array; publicKey: Uint8Array }) {
		this.impl = impl;
		this.#signature = signature;
	}

	static async create(): Promise<MlsDevice> {
		const impl = await getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE));
		return new MlsDevice(impl, await impl.signature.keygen());
	}

	/** base64 of the 32-byte Ed25519 public key: the device credential registered with the server. */
	get credential(): string {
		return toBase64(this.#signature.publicKey);
	}

	/** Leaves name their device as "<userId>/<deviceId>", so members map leaves to users. */
	bind(userId: string, deviceId: string): void {
		this.#identity = utf8.encode(`${userId}/${deviceId}`);
	}

	#credential(): Credential {
		return { credentialType: "basic", identity: this.#identity };
	}

	/** New KeyPackages, MLSMessage-encoded in base64; their private halves are kept for joining. */
	async newKeyPackages(count: number): Promise<string[]> {
		const out: string[] = [];
		for (let i = 0; i < count; i++) {
			const kp = await generateKeyPackageWithKey(
				this.#credential(),
				defaultCapabilities(),
				defaultLifetime,
				[],
				this.#signature,
				this.impl,
			);
			const ref = toHex(await makeKeyPackageRef(kp.publicPackage, this.impl.hash));
			this.#packages.set(ref, kp);
			out.push(
				toBase64(encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" })),
			);
		}
		return out;
	}

	async createGroup(groupId: string): Promise<ClientState> {
		const [own] = await this.newKeyPackages(1);
		const decoded = decodeMlsMessage(fromBase64(own as string), 0)?.[0];
		if (decoded?.wireformat !== "mls_key_package") throw new Error("own key package did not round-trip");
		const ref = toHex(await makeKeyPackageRef(decoded.keyPackage, this.impl.hash));
		const kp = this.#packages.get(ref);
		if (!kp) throw new Error("own key package missing");
		this.#packages.delete(ref);
		return createGroup(utf8.encode(groupId), kp.publicPackage, kp.privatePackage, [], this.impl);
	}

	async commit(state: ClientState, proposals: Proposal[]): Promise<CommitOutput> {
		const result = await createCommit(
			{ state, cipherSuite: this.impl },
			{ extraProposals: proposals, ratchetTreeExtension: true },
		);
		return {
			commit: toBase64(encodeMlsMessage(result.commit)),
			welcome: result.welcome
				? toBase64(encodeMlsMessage({ welcome: result.welcome, wireformat: "mls_welcome", version: "mls10" }))
				: undefined,
			next: result.newState,
		};
	}

	addProposals(packages: string[]): Proposal[] {
		return packages.map((p) => {
			const decoded = decodeMlsMessage(fromBase64(p), 0)?.[0];
			if (decoded?.wireformat !== "mls_key_package") throw new Error("claimed package is not a KeyPackage");
			return { proposalType: "add", add: { keyPackage: decoded.keyPackage } } as Proposal;
		});
	}

	/** Remove proposals for every leaf of the user ("<userId>/…" identities). */
	removeProposals(state: ClientState, userId: string): Proposal[] {
		const proposals: Proposal[] = [];
		state.ratchetTree.forEach((node, index) => {
			if (node?.nodeType !== "leaf") return;
			const identity =
				node.leaf.credential.credentialType === "basic" ? utf8.decode(node.leaf.credential.identity) : "";
			if (identity.startsWith(`${userId}/`))
				proposals.push({ proposalType: "remove", remove: { removed: index / 2 } } as Proposal);
		});
		return proposals;
	}

	async encrypt(state: ClientState, plaintext: Uint8Array): Promise<{ ciphertext: string; state: ClientState }> {
		const result = await createApplicationMessage(state, plaintext, this.impl);
		return {
			ciphertext: toBase64(
				encodeMlsMessage({
					privateMessage: result.privateMessage,
					wireformat: "mls_private_message",
					version: "mls10",
				}),
			),
			state: result.newState,
		};
	}

	async process(state: ClientState, ciphertext: string): Promise<Processed> {
		const decoded = decodeMlsMessage(fromBase64(ciphertext), 0)?.[0];
		if (!decoded || (decoded.wireformat !== "mls_private_message" && decoded.wireformat !== "mls_public_message")) {
			throw new Error("not an MLS message");
		}
		const result = await processMessage(decoded, state, emptyPskIndex, acceptAll, this.impl);
		if (result.kind === "applicationMessage")
			return { kind: "application", plaintext: result.message, state: result.newState };
		return { kind: "handshake", state: result.newState };
	}

	/** Joins from a Welcome made for one of this device's KeyPackages. */
	async join(welcome: string): Promise<ClientState> {
		const decoded = decodeMlsMessage(fromBase64(welcome), 0)?.[0];
		if (decoded?.wireformat !== "mls_welcome") throw new Error("not a Welcome");
		for (const secret of decoded.welcome.secrets) {
			const kp = this.#packages.get(toHex(secret.newMember));
			if (kp) return joinGroup(decoded.welcome, kp.publicPackage, kp.privatePackage, emptyPskIndex, this.impl);
		}
		throw new Error("the Welcome is for none of this device's KeyPackages");
	}
}
