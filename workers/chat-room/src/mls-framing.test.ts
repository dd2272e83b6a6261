import { describe, expect, it } from "vitest";
import { MlsDevice } from "../../../sdk/src/MlsDevice.ts";
import { readFraming } from "./mls-framing.ts";

const hexOf = (text: string) =>
	[...new TextEncoder().encode(text)].map((b) => b.toString(16).padStart(2, "0")).join("");

describe("readFraming", () => {
	it("reads the group, epoch and content type of a commit and of an application message", async () => {
		const alice = await MlsDevice.create();
		alice.bind("usr_alice", "dev_alice");
		const group = await alice.createGroup("framing-group");
		const { commit, next } = await alice.commit(group, []);
		expect(readFraming(commit)).toEqual({ groupId: hexOf("framing-group"), epoch: 0, contentType: "commit" });
		const { ciphertext } = await alice.encrypt(next, new TextEncoder().encode("hello"));
		expect(readFraming(ciphertext)).toEqual({ groupId: hexOf("framing-group"), epoch: 1, contentType: "application" });
	});

	it("finds no framing in bytes that are not a public or private MLS message", async () => {
		const binary = (bytes: number[]) => btoa(String.fromCharCode(...bytes));
		expect(readFraming(binary([0xff, 0xff, ...Array(62).fill(7)]))).toBeUndefined();
		// The header of a private message (mls10, wire format 2) over bytes that do not decode as one.
		expect(readFraming(binary([0, 1, 0, 2, ...Array(40).fill(0xee)]))).toBeUndefined();
		const [keyPackage] = await (await MlsDevice.create()).newKeyPackages(1);
		expect(readFraming(keyPackage as string)).toBeUndefined();
		expect(readFraming("")).toBeUndefined();
		expect(readFraming("not base64 at all!")).toBeUndefined();
	});
});
