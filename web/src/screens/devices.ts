// /devices: signed-in sessions and registered devices (encryption keys), with
// revocation, and storage use.
import type { StorageUsage } from "@secureconnect/protocol";
import { describeError } from "../api.ts";
import { announce, busy, formatBytes, formatTime, h, render } from "../dom.ts";
import type { Session } from "../session.ts";
import { alertBox, heading, type Screen } from "./screen.ts";

interface SessionRow {
	id: string;
	deviceName: string;
	createdAt: string;
	lastSeenAt: string;
	current: boolean;
}
interface DeviceRow {
	id: string;
	name: string;
	createdAt: string;
	lastSeenAt: string;
}

export function devicesScreen(session: Session): Screen {
	const alert = alertBox();
	const sessions = h("section", { class: "card", "aria-labelledby": "sessions-title" });
	const devices = h("section", { class: "card", "aria-labelledby": "devices-title" });
	const storage = h("section", { class: "card", "aria-labelledby": "storage-title" });

	const revoke = (label: string, run: () => Promise<unknown>, done: string) => {
		const b = h("button", { type: "button", class: "small danger", "aria-label": label }, label.split(" ")[0]);
		b.addEventListener("click", () =>
			busy(b, async () => {
				alert.show(undefined);
				try {
					await run();
					announce(done);
					await load();
				} catch (error) {
					alert.show(describeError(error));
				}
			}),
		);
		return b;
	};

	const load = async () => {
		try {
			const [{ sessions: rows }, { devices: keys }, usage] = await Promise.all([
				session.request<{ sessions: SessionRow[] }>("GET", "/v1/auth/sessions"),
				session.request<{ devices: DeviceRow[] }>("GET", "/v1/devices"),
				session.request<StorageUsage>("GET", "/v1/storage/usage"),
			]);
			render(
				sessions,
				h("h2", { id: "sessions-title" }, "Signed-in sessions"),
				h("p", { class: "hint" }, "Every sign-in is a session. Signing one out stops it at once."),
				h(
					"ul",
					{ class: "rows" },
					rows.map((s) =>
						h(
							"li",
							{ class: "row" },
							h(
								"span",
								{},
								h("strong", {}, s.deviceName || "Unnamed"),
								s.current ? h("span", { class: "tag" }, "This session") : null,
								h("br"),
								h(
									"span",
									{ class: "hint" },
									`Signed in ${formatTime(s.createdAt)} · last active ${formatTime(s.lastSeenAt)}`,
								),
							),
							s.current
								? null
								: revoke(
										`Sign out ${s.deviceName}`,
										() => session.request("DELETE", `/v1/auth/sessions/${s.id}`),
										`${s.deviceName} was signed out.`,
									),
						),
					),
				),
				h(
					"button",
					{
						type: "button",
						class: "danger",
						onclick: (event: Event) => {
							if (!confirm("Sign out every session, including this one?")) return;
							void busy(event.currentTarget as HTMLElement, async () => {
								await session.request("DELETE", `/v1/devices/${session.deviceId}`).catch(() => {});
								await session.request("POST", "/v1/auth/logout-all").catch(() => {});
								session.end("Every session was signed out.");
							});
						},
					},
					"Sign out everywhere",
				),
			);
			render(
				devices,
				h("h2", { id: "devices-title" }, "Devices with encryption keys"),
				h(
					"p",
					{ class: "hint" },
					"Each device has its own keys and gets its own copy of new messages. Remove devices you no longer use.",
				),
				h(
					"ul",
					{ class: "rows" },
					keys.map((d) =>
						h(
							"li",
							{ class: "row" },
							h(
								"span",
								{},
								h("strong", {}, d.name),
								d.id === session.deviceId ? h("span", { class: "tag" }, "This device") : null,
								h("br"),
								h(
									"span",
									{ class: "hint" },
									`Added ${formatTime(d.createdAt)} · last active ${formatTime(d.lastSeenAt)}`,
								),
							),
							d.id === session.deviceId
								? null
								: revoke(
										`Remove ${d.name}`,
										() => session.request("DELETE", `/v1/devices/${d.id}`),
										`${d.name} was removed.`,
									),
						),
					),
				),
			);
			const used = usage.usedBytes + usage.reservedBytes;
			render(
				storage,
				h("h2", { id: "storage-title" }, "Storage"),
				h("p", {}, `${formatBytes(used)} of ${formatBytes(usage.quotaBytes)} used by your encrypted files.`),
				h("progress", { max: usage.quotaBytes, value: used, "aria-label": "Storage used" }),
			);
		} catch (error) {
			alert.show(describeError(error));
		}
	};
	void load();
	return {
		title: "Devices and sessions",
		element: h(
			"section",
			{ class: "page" },
			heading("Devices and sessions"),
			alert.element,
			sessions,
			devices,
			storage,
		),
	};
}
