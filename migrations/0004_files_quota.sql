ALTER TABLE "storage_quotas" ADD COLUMN "used_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "storage_quotas" ADD COLUMN "reserved_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "storage_quotas" ADD COLUMN "pending_uploads" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "storage_quotas" ADD CONSTRAINT "storage_quotas_counters_nonnegative" CHECK ("storage_quotas"."used_bytes" >= 0 AND "storage_quotas"."reserved_bytes" >= 0 AND "storage_quotas"."pending_uploads" >= 0);--> statement-breakpoint
-- Backfill the counters from rows written under 0003 (usage was a sum over files then).
UPDATE "storage_quotas" AS q SET "used_bytes" = s.used, "reserved_bytes" = s.reserved, "pending_uploads" = s.pending
FROM (
	SELECT "owner_id",
		coalesce(sum("size") FILTER (WHERE "state" = 'complete'), 0) AS used,
		coalesce(sum("size") FILTER (WHERE "state" = 'pending'), 0) AS reserved,
		count(*) FILTER (WHERE "state" = 'pending') AS pending
	FROM "files" GROUP BY "owner_id"
) AS s
WHERE q."user_id" = s."owner_id";
