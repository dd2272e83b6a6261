// Encrypted attachments over the Files API: the file is encrypted here with a
// fresh AES-256-GCM key (SDK encryptFile), the ciphertext is uploaded (one PUT,
// or parts for large files) with progress, and the key travels to the other
// members inside an end-to-end encrypted message. The server stores only
// ciphertext declared as application/octet-stream.
import type { CreateFileResponse, UploadInstructions } from "@secureconnect/protocol";
import { decryptFile, encryptFile } from "../../sdk/src/index.ts";
import type { FileRef, Session } from "./session.ts";

/** The whole file is encrypted in memory: keep attachments to a size a tab can hold twice. */
export const MAX_ATTACHMENT_BYTES = 200 * 1024 * 1024;

export type Progress = (done: number, total: number) => void;

function put(url: string, token: string, body: Blob, onProgress: (loaded: number) => void): Promise<void> {
	return new Promise((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open("PUT", url);
		xhr.setRequestHeader("authorization", `Bearer ${token}`);
		xhr.setRequestHeader("content-type", "application/octet-stream");
		xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
		xhr.addEventListener("load", () => {
			if (xhr.status >= 200 && xhr.status < 300) resolve();
			else {
				let message = `Upload failed (HTTP ${xhr.status}).`;
				try {
					message = (JSON.parse(xhr.responseText) as { error: { message: string } }).error.message;
				} catch {}
				reject(new Error(message));
			}
		});
		xhr.addEventListener("error", () => reject(new Error("Upload failed: connection lost.")));
		xhr.send(body);
	});
}

async function upload(session: Session, upload: UploadInstructions, body: Blob, onProgress: Progress): Promise<void> {
	const token = async () => (await session.client.accessToken()) ?? "";
	if (upload.method === "single") {
		await put(upload.url, await token(), body, (loaded) => onProgress(loaded, body.size));
		return;
	}
	let done = 0;
	for (let part = 1; part <= upload.partCount; part++) {
		const chunk = body.slice((part - 1) * upload.partSize, part * upload.partSize);
		await put(upload.partUrl.replace("{partNumber}", String(part)), await token(), chunk, (loaded) =>
			onProgress(done + loaded, body.size),
		);
		done += chunk.size;
	}
	await session.request("POST", upload.completeUrl);
}

/** Encrypts, uploads and announces a file in the conversation. */
export async function sendFile(session: Session, chatId: string, file: File, onProgress: Progress): Promise<void> {
	if (file.size > MAX_ATTACHMENT_BYTES) {
		throw new Error(`Files up to ${MAX_ATTACHMENT_BYTES / 1024 / 1024} MB can be sent from the browser.`);
	}
	const { ciphertext, fileKey } = await encryptFile(new Uint8Array(await file.arrayBuffer()));
	const created = await session.request<CreateFileResponse>("POST", "/v1/files", {
		size: ciphertext.byteLength,
		contentType: "application/octet-stream",
		conversationId: chatId,
	});
	const body = new Blob([ciphertext as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" });
	await upload(session, created.upload, body, onProgress);
	const ref: FileRef = {
		type: "file",
		fileId: created.file.id,
		name: file.name,
		size: file.size,
		contentType: file.type || "application/octet-stream",
		key: fileKey.key,
		iv: fileKey.iv,
	};
	await session.sendFileRef(chatId, ref);
}

/** Downloads the ciphertext (with progress) and decrypts it with the key from the message. */
export async function fetchFile(session: Session, ref: FileRef, onProgress: Progress): Promise<Blob> {
	const token = await session.client.accessToken();
	const res = await fetch(`/v1/files/${ref.fileId}/content`, { headers: { authorization: `Bearer ${token}` } });
	if (!res.ok || !res.body) {
		const text = await res.text().catch(() => "");
		let message = `Download failed (HTTP ${res.status}).`;
		try {
			message = (JSON.parse(text) as { error: { message: string } }).error.message;
		} catch {}
		throw new Error(message);
	}
	const total = Number(res.headers.get("content-length")) || ref.size;
	const reader = res.body.getReader();
	const chunks: Uint8Array[] = [];
	let received = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		chunks.push(value);
		received += value.byteLength;
		onProgress(received, total);
	}
	const ciphertext = new Uint8Array(received);
	let offset = 0;
	for (const chunk of chunks) {
		ciphertext.set(chunk, offset);
		offset += chunk.byteLength;
	}
	const plaintext = await decryptFile(ciphertext, { key: ref.key, iv: ref.iv, algorithm: "AES-256-GCM" });
	return new Blob([plaintext as Uint8Array<ArrayBuffer>], { type: ref.contentType });
}
